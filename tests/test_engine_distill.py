"""Knowledge transfer through the one training loop (Table 8, paper Eq. 4-6): the knowledge token's
training touches the token only, the heatmap-distillation loss is Eq. 4, the token reaches the student's
attention, both new jobs resume exactly, and a student with its token exports, reloads and evaluates
to the same metrics."""
from __future__ import annotations

import copy
import hashlib

import pytest
import torch

from engine_support import make_synthetic, tiny_config
from vitpose.config import RUN_FILES, RunConfig
from vitpose.engine.distill import DistillObjective, TokenObjective, load_knowledge_token
from vitpose.engine.trainer import STATE_FILE, objective_for, train
from vitpose.utils.errors import CheckpointError, ConfigError

# A teacher wider than the student (48 vs tiny_config's 32), as ViTPose-L (1,024) is wider than B (768).
TEACHER_MODEL = {"arch": "vit", "embed_dim": 48, "depth": 2, "num_heads": 2, "input_size": [64, 48],
                 "decoder_channels": 16, "drop_path_rate": 0.1}
TOKEN_TRAIN = {"epochs": 2, "lr": 1e-2, "weight_decay": 0.0, "layer_decay": 1.0, "lr_schedule": "cosine",
               "warmup_epochs": 0, "warmup_iters": 0, "milestones": None}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """Synthetic COCO and a teacher trained on it for one epoch (its released-format model.pth)."""
    root = tmp_path_factory.mktemp("kd")
    coco = make_synthetic(root / "coco", num_train=8, num_val=3)
    cfg = RunConfig.from_dict(tiny_config(coco, run="teacher", model=TEACHER_MODEL, train={"epochs": 1}))
    ckpt = root / "teacher" / RUN_FILES["checkpoint"]
    train(cfg, root / "teacher-work", ckpt, progress=False)
    return coco, ckpt


def token_config(coco, ckpt, **train_over) -> dict:
    return tiny_config(coco, run="token", serves=[], model=TEACHER_MODEL, train={**TOKEN_TRAIN, **train_over},
                       distill={"job": "token", "teacher_model": TEACHER_MODEL, "teacher_checkpoint": str(ckpt)})


def student_config(coco, ckpt, token_file=None, heatmap=True, weight=1.0, **train_over) -> dict:
    model = {"knowledge_token": TEACHER_MODEL["embed_dim"]} if token_file else {}
    return tiny_config(coco, run="student", model=model, train={"epochs": 2, **train_over}, distill={
        "job": "student", "teacher_model": TEACHER_MODEL, "heatmap": heatmap, "heatmap_weight": weight,
        "teacher_checkpoint": str(ckpt) if heatmap else None,
        "token": token_file is not None, "token_file": None if token_file is None else str(token_file)})


@pytest.fixture(scope="module")
def token_file(teacher, tmp_path_factory):
    coco, ckpt = teacher
    out = tmp_path_factory.mktemp("token") / RUN_FILES["token"]
    train(RunConfig.from_dict(token_config(coco, ckpt)), out.parent / "work", out, progress=False)
    return out


def _models(objective, cfg):
    """The modules of a run as the loop sets them up (seeded build, frozen ones in eval mode)."""
    from vitpose.engine.objective import Models

    torch.manual_seed(cfg.seed)
    mods = objective.build(cfg)
    for aux in mods.frozen.values():
        aux.eval().requires_grad_(False)
    from contextlib import nullcontext
    return mods, Models(net=mods.model, model=mods.model, frozen=mods.frozen, device=torch.device("cpu"),
                        autocast=nullcontext)


def _batch(cfg, n=4):
    from torch.utils.data import default_collate

    ds = objective_for(cfg).build_dataset(cfg)
    return default_collate([ds[i] for i in range(n)])


def test_the_configs_select_the_distillation_objectives(teacher, token_file):
    coco, ckpt = teacher
    assert objective_for(RunConfig.from_dict(token_config(coco, ckpt))).name == "knowledge-token"
    assert objective_for(RunConfig.from_dict(student_config(coco, ckpt, token_file))).name == "distill"


def test_token_training_trains_the_token_and_leaves_the_teacher_untouched(teacher, tmp_path):
    coco, ckpt = teacher
    before = _sha(ckpt)
    cfg = RunConfig.from_dict(token_config(coco, ckpt))
    mods, models = _models(TokenObjective(), cfg)
    token0 = mods.model.token.detach().clone()
    t = mods.frozen["teacher"]
    t_state = {k: v.clone() for k, v in t.state_dict().items()}
    opt = torch.optim.AdamW(mods.model.parameters(), lr=1e-2)
    batch = _batch(cfg)
    for _ in range(3):
        opt.zero_grad()
        loss, _ = TokenObjective().loss(batch, models)
        loss.backward()
        assert all(p.grad is None for p in t.parameters())  # no gradient reaches the teacher
        assert mods.model.token.grad is not None and mods.model.token.grad.abs().sum() > 0
        opt.step()
    assert not torch.equal(mods.model.token, token0)  # the token changed ...
    assert all(torch.equal(t.state_dict()[k], v) for k, v in t_state.items())  # ... and nothing else
    assert [n for n, _ in mods.model.named_parameters()] == ["token"]

    out = tmp_path / RUN_FILES["token"]
    train(cfg, tmp_path / "work", out, progress=False)
    assert _sha(ckpt) == before  # the teacher's file is bit-identical after token training
    obj = torch.load(out, map_location="cpu", weights_only=True)
    assert set(obj) == {"token", "meta"} and obj["token"].shape == (1, 1, TEACHER_MODEL["embed_dim"])
    assert obj["meta"]["config_hash"] == cfg.hash and obj["meta"]["teacher_checkpoint"] == str(ckpt)


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_heatmap_distillation_loss_is_eq4_by_hand(teacher, weight):
    coco, ckpt = teacher
    cfg = RunConfig.from_dict(student_config(coco, ckpt, weight=weight))
    obj = DistillObjective()
    mods, models = _models(obj, cfg)
    mods.model.eval()  # no drop path: the two forward passes below are the same computation
    batch = _batch(cfg)
    loss, logged = obj.loss(batch, models)
    with torch.no_grad():
        s = mods.model(batch["img"])
        t = mods.frozen["teacher"](batch["img"])
    w = batch["target_weight"].reshape(*batch["target"].shape[:2], 1, 1)
    gt = (((s - batch["target"]) * w) ** 2).mean()
    kd = (((s - t) * w) ** 2).mean()
    torch.testing.assert_close(loss.detach(), gt + weight * kd)
    torch.testing.assert_close(logged["kd_loss"], kd)
    loss.backward()
    assert all(p.grad is None for p in mods.frozen["teacher"].parameters())


def test_the_token_reaches_the_students_attention(teacher, token_file):
    from vitpose.models import ModelConfig, build_model

    cfg = ModelConfig.from_dict({**tiny_config(teacher[0])["model"], "knowledge_token": 48, "drop_path_rate": 0.0})
    model = build_model(cfg).eval()
    images = torch.randn(2, 3, 64, 48)
    model.knowledge_token.set_token(load_knowledge_token(token_file))
    with torch.no_grad():
        a, fa = model(images), model.forward_features(images)
        model.knowledge_token.set_token(torch.randn(1, 1, 48))
        b, fb = model(images), model.forward_features(images)
    # the freshly initialised head's heatmaps are ~1e-7: compare relative to their size
    assert a.shape == (2, 17, 16, 12) and (a - b).abs().max() > 1e-3 * a.abs().max()
    assert (fa - fb).abs().max() > 1e-2  # every patch token's feature moves (features are O(1))
    with pytest.raises(ValueError, match="expects \\[1, 1, 48\\]"):
        model.knowledge_token.set_token(torch.zeros(1, 1, 32))
    with pytest.raises(ConfigError, match="knowledge_token: needs a ViT with full attention"):
        ModelConfig.from_dict({**cfg.to_dict(), "attention": "window", "window_size": [2, 2]})


def test_a_student_with_token_starts_from_the_frozen_token_and_trains_the_map(teacher, token_file):
    coco, ckpt = teacher
    cfg = RunConfig.from_dict(student_config(coco, ckpt, token_file, heatmap=False))
    mods, _ = _models(DistillObjective(), cfg)
    kt = mods.model.knowledge_token
    assert torch.equal(kt.token, load_knowledge_token(token_file))
    trainable = {n for n, p in mods.model.named_parameters() if p.requires_grad}
    assert "knowledge_token.proj.weight" in trainable and "knowledge_token.token" not in trainable
    assert mods.frozen == {}  # token-only distillation needs no teacher forward


@pytest.mark.parametrize("job", ["token", "student"])
def test_distillation_jobs_killed_mid_epoch_resume_to_the_same_weights(teacher, token_file, tmp_path, job):
    coco, ckpt = teacher
    raw = token_config(coco, ckpt) if job == "token" else student_config(coco, ckpt, token_file)
    cfg = RunConfig.from_dict(raw)
    ref = train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    ipe = ref["iters_per_epoch"]
    stop = ipe + 1
    assert stop % ipe and stop < ref["iterations"]
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=stop, progress=False)
    assert part["interrupted"] and (tmp_path / "run" / STATE_FILE).exists()
    done = train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False)
    assert done["resumed_from"] == stop
    a = torch.load(tmp_path / "ref.pth", weights_only=True)
    b = torch.load(tmp_path / "run.pth", weights_only=True)
    key = "token" if job == "token" else "state_dict"
    sa, sb = (a[key], b[key]) if job == "student" else ({"t": a["token"]}, {"t": b["token"]})
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_student_with_token_exports_reloads_and_evaluates_the_same(teacher, token_file, tmp_path):
    from vitpose.engine.inference import evaluate, load_model
    from vitpose.models.checkpoint import load_vitpose_checkpoint

    coco, ckpt = teacher
    cfg = RunConfig.from_dict(student_config(coco, ckpt, token_file))
    out = tmp_path / RUN_FILES["checkpoint"]
    train(cfg, tmp_path / "work", out, progress=False)
    obj = torch.load(out, map_location="cpu", weights_only=True)
    sd = obj["state_dict"]
    # The released format plus the token's keys; the token is still the token run's, bit for bit.
    assert {"knowledge_token.token", "knowledge_token.proj.weight", "knowledge_token.proj.bias"} <= set(sd)
    assert torch.equal(sd["knowledge_token.token"], load_knowledge_token(token_file))
    assert obj["meta"]["distill"]["token_file"] == str(token_file)
    plain = {k: v for k, v in sd.items() if not k.startswith("knowledge_token.")}
    assert all(k.startswith(("backbone.", "keypoint_head.")) for k in plain)

    reloaded = load_model(cfg, out)
    manual = copy.deepcopy(reloaded)
    load_vitpose_checkpoint(manual, out)
    m1 = evaluate(cfg, out, tmp_path / "e1", progress=False)
    m2 = evaluate(cfg, None, tmp_path / "e2", progress=False, model=manual)
    assert m1 == m2
    # without the token the same weights predict something else: the token is part of the model
    manual.knowledge_token.set_token(torch.zeros(1, 1, 48))
    images = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        fa, fb = reloaded.eval().forward_features(images), manual.eval().forward_features(images)
    assert (fa - fb).abs().max() > 1e-4  # a small token (init std 0.02, two short epochs), yet a change


def test_bad_distillation_input_is_named(teacher, token_file, tmp_path):
    coco, ckpt = teacher
    missing = tmp_path / "no-teacher.pth"
    with pytest.raises(CheckpointError, match=str(missing)):
        train(RunConfig.from_dict(token_config(coco, missing)), tmp_path / "w", tmp_path / "t.pth", progress=False)
    assert not (tmp_path / "t.pth").exists()
    with pytest.raises(CheckpointError, match="no-token.pth"):
        train(RunConfig.from_dict(student_config(coco, ckpt, tmp_path / "no-token.pth")), tmp_path / "w2",
              tmp_path / "s.pth", progress=False)
    bad = tmp_path / "bad-token.pth"
    torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(CheckpointError, match="bad-token.pth: expected a knowledge-token file"):
        load_knowledge_token(bad)
    with pytest.raises(ConfigError, match="distill.teacher_checkpoint: required for heatmap distillation"):
        RunConfig.from_dict({**student_config(coco, ckpt),
                             "distill": {**student_config(coco, ckpt)["distill"], "teacher_checkpoint": None}})
    with pytest.raises(ConfigError, match="model.knowledge_token: expected the teacher's width 48"):
        raw = student_config(coco, ckpt, token_file)
        raw["model"]["knowledge_token"] = 32
        RunConfig.from_dict(raw)
    with pytest.raises(ConfigError, match="a student distils its teacher's heatmaps, its token or both"):
        RunConfig.from_dict(student_config(coco, ckpt, heatmap=False))
