"""MAE pre-training through the one training loop (Table 3): it learns, resumes exactly, exports MAE's
format, and a finetuning run starts from its output."""
from __future__ import annotations

import json

import pytest
import torch

from engine_support import make_crop_index, make_synthetic, mae_config, tiny_config
from vitpose.config import RUN_FILES, RunConfig
from vitpose.engine.trainer import LOG_FILE, STATE_FILE, objective_for, train
from vitpose.utils.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    coco = make_synthetic(root / "coco", num_train=8, num_val=2)
    return coco, make_crop_index(coco, root / "pretrain" / "coco-crop.json")


def _mae(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _log(work):
    return [json.loads(line) for line in (work / LOG_FILE).read_text().splitlines()]


def test_a_pretraining_config_selects_the_mae_objective(crops):
    _, index = crops
    cfg = RunConfig.from_dict(mae_config(index))
    assert objective_for(cfg).name == "mae" and cfg.data is None and cfg.datasets == []
    assert objective_for(RunConfig.from_dict(tiny_config(crops[0]))).name == "heatmap"


def test_pretraining_lowers_the_reconstruction_loss_and_exports_mae_format(crops, tmp_path):
    _, index = crops
    cfg = RunConfig.from_dict(mae_config(index, train={"epochs": 12, "lr": 3e-3}))
    out = tmp_path / RUN_FILES["mae"]
    summary = train(cfg, tmp_path / "work", out, progress=False)
    log = _log(tmp_path / "work")
    first = sum(r["loss"] for r in log[:3]) / 3
    last = sum(r["loss"] for r in log[-3:]) / 3
    assert last < 0.9 * first, (first, last)
    obj = _mae(out)
    assert set(obj) >= {"model", "meta"}
    assert obj["meta"]["config_hash"] == cfg.hash and obj["meta"]["set"] == "coco-crop"
    assert obj["meta"]["iterations"] == summary["iterations"]
    keys = set(obj["model"])
    assert {"pos_embed", "patch_embed.proj.weight", "norm.weight", "mask_token", "decoder_pred.weight"} <= keys
    assert not any(k.startswith("backbone.") for k in keys)


def test_a_finetuning_run_starts_from_the_pretrained_encoder(crops, tmp_path):
    coco, index = crops
    mcfg = RunConfig.from_dict(mae_config(index, train={"epochs": 1, "warmup_epochs": 0.5}))
    mae_file = tmp_path / RUN_FILES["mae"]
    train(mcfg, tmp_path / "mae", mae_file, progress=False)
    fcfg = RunConfig.from_dict(tiny_config(coco, pretrained=str(mae_file)))
    from vitpose.engine.objective import build_model_for_training

    model = build_model_for_training(fcfg)
    file = _mae(mae_file)["model"]
    bb = model.backbone.state_dict()
    for key in ("patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias"):
        assert torch.equal(bb[key], file[key]), key
    # the 4x4 pre-training grid resized to the 4x3 grid of the 64x48 finetuning input
    assert bb["pos_embed"].shape == (1, 1 + 4 * 3, 32)


def test_pretraining_killed_mid_epoch_resumes_to_the_same_weights(crops, tmp_path):
    _, index = crops
    cfg = RunConfig.from_dict(mae_config(index, train={"log_every_iters": 2}))
    ref = train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    ipe = ref["iters_per_epoch"]
    stop = ipe + 1
    assert ipe >= 2 and stop % ipe
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=stop, progress=False)
    assert part["interrupted"] and (tmp_path / "run" / STATE_FILE).exists()
    assert not (tmp_path / "run.pth").exists()
    done = train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False)
    assert done["resumed_from"] == stop and done["iterations"] == ref["iterations"]
    a, b = _mae(tmp_path / "ref.pth")["model"], _mae(tmp_path / "run.pth")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k != "time"} for r in _log(tmp_path / "ref")]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in _log(tmp_path / "run")]


def test_a_finetuning_state_is_not_resumed_as_pretraining(crops, tmp_path):
    coco, index = crops
    train(RunConfig.from_dict(tiny_config(coco, train={"epochs": 1})), tmp_path / "w", tmp_path / "m.pth",
          stop_after_iters=1, progress=False)
    from vitpose.utils.errors import CheckpointError

    with pytest.raises(CheckpointError, match="last.pth: (training state of a different configuration|model weights do not match)"):
        train(RunConfig.from_dict(mae_config(index)), tmp_path / "w", tmp_path / "mae.pth", progress=False)


def test_bad_pretraining_input_is_named(crops, tmp_path):
    coco, index = crops
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match=str(missing)):
        train(RunConfig.from_dict(mae_config(missing)), tmp_path / "w", tmp_path / "m.pth", progress=False)
    assert not (tmp_path / "w").exists() and not (tmp_path / "m.pth").exists()
    with pytest.raises(ConfigError, match=r"model: MAE pre-trains a plain ViT"):
        RunConfig.from_dict(mae_config(index, model={"attention": "window", "window_size": [2, 2]}))
    with pytest.raises(ConfigError, match=r"data: a pre-training run reads `pretraining.index`"):
        RunConfig.from_dict({**mae_config(index), "data": tiny_config(coco)["data"]})
    with pytest.raises(ConfigError, match=r"pretraining\.mask_ratio: expected a number in \(0, 1\)"):
        RunConfig.from_dict(mae_config(index, pretraining={"mask_ratio": 1.0}))
    with pytest.raises(ConfigError, match=r"pretraining\.set: expected one of"):
        RunConfig.from_dict(mae_config(index, pretraining={"set": "coco"}))


def test_each_stage_refuses_the_other_kind_of_run(crops, tmp_path):
    """stages.pretrain trains pre-training runs only, stages.finetune finetuning runs only: a mix-up
    exits 2 naming the run and the right command, before any job starts and without writing anything."""
    import subprocess
    import sys

    from vitpose.config import REPO_ROOT

    coco, index = crops
    mae_file, pose_file = tmp_path / "mae.json", tmp_path / "pose.json"
    mae_file.write_text(json.dumps(mae_config(index)))
    pose_file.write_text(json.dumps(tiny_config(coco)))
    for stage, config, right in (("pretrain", pose_file, "stages.finetune"), ("finetune", mae_file, "stages.pretrain")):
        proc = subprocess.run([sys.executable, "-m", f"stages.{stage}", "--config", str(config), "--in-process",
                               "--work-dir", str(tmp_path / "w"), "--out", str(tmp_path / "out.pth")],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert f"train it with `python -m {right}`" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "w").exists() and not (tmp_path / "out.pth").exists()
