"""params.yaml validation, the registry's expansion into runs, and the generated dvc.yaml."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vitpose.utils.errors import ConfigError
from workflow import dvcgen
from workflow.registry import CAPABILITIES, REPO, Registry, plan_text
from workflow.schema import load_params

PARAMS = REPO / "params.yaml"


def _write_params(tmp_path: Path, edit) -> Path:
    params = yaml.safe_load(PARAMS.read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_checked_in_params_are_valid():
    params = load_params(PARAMS)
    assert params["scale"] == "smoke"


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        (lambda p: p["tables"]["table5"]["rows"]["window"].update(windw="8x8"),
         "tables.table5.rows.window.windw", "unknown key"),
        (lambda p: p["hyperparameters"]["vitpose-b"].update(lr="fast"),
         "hyperparameters.vitpose-b.lr", "expected a number > 0"),
        (lambda p: p["baseline"].update(input="256by192"), "baseline.input", "HxW"),
        (lambda p: p["schedule"].update(milestones=[200, 170]), "schedule.milestones", "increasing"),
        (lambda p: p["scales"]["smoke"]["train"].update(epochs=0), "scales.smoke.train.epochs", ">= 1"),
        (lambda p: p.update(scale="huge"), "scale", "one of"),
    ],
)
def test_bad_params_name_the_key(tmp_path, edit, key, expected):
    path = _write_params(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert key in str(err.value) and expected in str(err.value) and str(path) in str(err.value)
    # The command-line entry point fails the same way, with exit status 2 and no traceback.
    proc = subprocess.run([sys.executable, "-m", "workflow.registry", "validate", "--params", str(path)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and key in proc.stderr and "Traceback" not in proc.stderr


def test_identical_configurations_are_one_run():
    reg = Registry(load_params(PARAMS), "smoke")
    base = reg.runs["vitpose-b-classic-256x192"]
    assert sorted({s["table"] for s in base.serves}) == [2, 3, 4, 6, 7, 8, 9]
    # Every table row maps to exactly one run, and run ids are unique per spec.
    # (A token run carries its teacher's spec: it is the teacher's other job, not another configuration.)
    specs = [repr(sorted(r.spec.items())) for r in reg.runs.values() if r.stage != "token"]
    assert len(specs) == len(set(specs))
    assert len(reg.rows) == sum(len(t["rows"]) for t in reg.params["tables"].values())


def test_run_config_follows_scale_and_table1():
    params = load_params(PARAMS)
    paper = Registry(params, "paper").run_config("vitpose-l-classic-256x192")
    assert paper["model"]["arch"] == "vitpose-l"
    assert paper["train"]["epochs"] == 210 and paper["train"]["batch_size"] == 512
    assert paper["train"]["layer_decay"] == 0.80 and paper["model"]["drop_path_rate"] == 0.50
    assert paper["train"]["milestones"] == [170, 200]
    assert paper["pretrained"] == "data/weights/mae_pretrain_vit_large.pth"
    smoke = Registry(params, "smoke").run_config("vitpose-b-classic-256x192-r2-window16x12-shift-pool")
    # smoke geometry: input_scale 0.5 shrinks the input and the window alike (run id keeps the paper's)
    assert smoke["model"]["input_size"] == [128, 96] and smoke["model"]["ratio"] == 2
    assert smoke["model"]["window_size"] == [8, 6]
    assert smoke["model"]["shift"] and smoke["model"]["pool"]
    # smoke: ViTs pre-trained on imagenet-1k start from random weights (imagenet_init: none)
    assert smoke["pretrained"] is None
    assert Registry(params, "smoke").get(smoke["run"]).upstream == {}
    # Milestones keep their relative place when the schedule is shortened.
    e = smoke["train"]["epochs"]
    assert smoke["train"]["milestones"] == pytest.approx([170 / 210 * e, 200 / 210 * e])
    # A scale's layer_decay replaces Table 1's (smoke: 1.0, random-init stand-ins), in the run and in
    # the Table 1 the report prints at that scale; without one, Table 1's value is used.
    assert smoke["train"]["layer_decay"] == 1.0
    assert Registry(params, "smoke").hyperparameters()["vitpose-l"]["layer_decay"] == 1.0
    assert Registry(params, "paper").hyperparameters()["vitpose-l"]["layer_decay"] == 0.80


def test_missing_capabilities_are_explicit():
    # Still missing: ImageNet-supervised ResNet weights at a real-data scale (the SimpleBaseline rows).
    assert not CAPABILITIES["resnet_imagenet_weights"][0] and CAPABILITIES["vitae_g"][0]
    paper = Registry(load_params(PARAMS), "paper")
    missing = {r.id: r.missing for r in paper.runs.values() if r.missing}
    assert set(missing) == {r.id for r in paper.runs.values() if r.spec.get("model", "").startswith("resnet")}
    assert all("resnet_imagenet_weights" in why for why in missing.values()) and len(missing) == 4
    assert all(p["unavailable"] for p in paper.table_plan() if p["row"].startswith("resnet"))
    smoke = Registry(load_params(PARAMS), "smoke")
    assert not [r.id for r in smoke.runs.values() if r.missing]  # the smoke ResNets need no ImageNet
    for table, cap in [(3, "mae_pretraining"), (7, "multi_dataset"), (8, "distillation"), (10, "vitae_g")]:
        assert smoke.table_blocker(table) is None, cap
    # A table studying a missing capability is blocked, naming it.
    params = load_params(PARAMS)
    params["tables"]["table2"]["studies"] = "resnet_imagenet_weights"
    assert "resnet_imagenet_weights" in Registry(params, "paper").table_blocker(2)
    plan = smoke.table_plan()
    assert all(not p["unavailable"] for p in plan if p["table"] in (8, 10))


def test_table10_rows_are_test_dev_submissions_of_their_members():
    """ViTPose-G is submitted alone; the "+" row is ViTPose-G with Table 9's ViTPose-H* and L* (no run of
    its own is trained: every member is a run some row needs anyway)."""
    for scale in ("smoke", "paper"):
        reg = Registry(load_params(PARAMS), scale)
        rows = {e["row"]: reg.get(e["run"]) for e in reg.table_plan() if e["table"] == 10}
        single, ensemble = rows["vitpose-g"], rows["vitpose-g+"]
        g = "vitpose-g-classic-576x432-coco+aic"
        assert single.id == f"testdev-{g}" and single.stage == ensemble.stage == "testdev"
        assert single.upstream == {"member1": g}
        nine = {e["row"]: e["run"] for e in reg.table_plan() if e["table"] == 9 and not e.get("released")}
        assert ensemble.upstream == {"member1": g, "member2": nine["vitpose-h*"], "member3": nine["vitpose-l*"]}
        assert ensemble.id == "testdev-" + "--".join(ensemble.upstream.values())
        cfg = reg.run_config(ensemble.id)
        # The ensemble works at its largest member's geometry (ViTPose-G's), on COCO val only.
        assert cfg["model"] == reg.run_config(g)["model"] and cfg["extra_data"] == []
        assert cfg["data"]["dataset"] == "coco" and "train" not in reg._raw_config(ensemble.id)
        assert reg.data_items(ensemble) == ["coco", "coco-testdev"]
        assert ensemble.missing is None and reg.get(g).serves == []
    smoke = Registry(load_params(PARAMS), "smoke")
    assert smoke.run_config(g)["model"]["arch"] == "vitae" and smoke.run_config(g)["model"]["input_size"] == [288, 224]
    assert not smoke.server_scored() and smoke.table_files(10) == [
        r.file("testdev_record") for r in smoke.table_runs(10)]
    paper = Registry(load_params(PARAMS), "paper")
    assert paper.server_scored() and paper.table_files(10) == [r.metrics for r in paper.table_runs(10)]
    assert paper.run_config(g)["pretrained"] == "data/weights/vitae_g_pretrain.pth"  # a manual item


def test_an_ensemble_row_is_only_its_members_and_only_in_a_test_dev_table(tmp_path):
    def members_in_table9(p):
        p["tables"]["table9"]["rows"]["vitpose-b"] = {"members": [{}, {"model": "vitpose-l"}]}

    def members_beside_keys(p):
        p["tables"]["table10"]["rows"]["vitpose-g+"]["model"] = "vitpose-h"

    for edit in (members_in_table9, members_beside_keys):
        path = _write_params(tmp_path, edit)
        with pytest.raises(ConfigError, match=r"\.members: an ensemble's members are the whole row"):
            load_params(path)


def test_vitae_is_never_mae_pretrained():
    """ViTPose-G from our own MAE pre-training (imagenet_init: ours) is refused when the runs are
    validated, naming the run and why (the masked token set has no grid for the convolution branch)."""
    params = load_params(PARAMS)
    params["scales"]["smoke"]["imagenet_init"] = "ours"
    reg = Registry(params, "smoke")
    assert reg.get("vitpose-g-classic-576x432-coco+aic").upstream["pretrain"] == "mae-vitpose-g-imagenet-1k"
    with pytest.raises(ConfigError, match=r"run mae-vitpose-g-imagenet-1k .*MAE pre-training of a ViTAE backbone"):
        reg.validate_runs()


def test_released_checkpoints_are_evaluation_runs_of_their_rows():
    reg = Registry(load_params(PARAMS), "paper")
    released = {r.spec["released"]: r for r in reg.runs.values() if r.stage == "released"}
    assert set(released) == set(load_params(PARAMS)["released"])
    b, b_multi = released["vitpose-b"], released["vitpose-b-multi-coco"]
    assert b.id == "released-vitpose-b-classic-256x192"
    assert b.serves == [{"table": 2, "row": "vitpose-b/classic"}, {"table": 9, "row": "vitpose-b"}]
    assert b_multi.id == "released-vitpose-b-classic-256x192-coco+aic+mpii"
    assert b_multi.serves == [{"table": 9, "row": "vitpose-b*"}]
    assert released["vitpose-s"].serves == []  # no row of the paper has ViTPose-S
    assert reg.released_checkpoint(b) == "data/weights/vitpose/vitpose-b.pth"  # the manifest item's place
    cfg = reg.run_config(b_multi.id)  # scored on COCO val, through the file's COCO decoder
    assert cfg["data"]["dataset"] == "coco" and cfg["extra_data"] == [] and cfg["pretrained"] is None
    assert cfg["model"] == reg.run_config("vitpose-b-classic-256x192")["model"]
    plan = [e for e in reg.table_plan() if e.get("released")]
    assert {(e["table"], e["row"]) for e in plan} == {(2, "vitpose-b/classic"), (2, "vitpose-b/simple"),
                                                       (2, "vitpose-l/classic"), (2, "vitpose-l/simple"),
                                                       (2, "vitpose-h/classic"), (2, "vitpose-h/simple"),
                                                       (9, "vitpose-b"), (9, "vitpose-b*"), (9, "vitpose-l"),
                                                       (9, "vitpose-l*"), (9, "vitpose-h"), (9, "vitpose-h*")}
    assert not [e for e in reg.table_plan() if e.get("released") and e["table"] not in (2, 9)]
    # Only what is in place is part of a table's target.
    assert b.metrics not in reg.table_files(2)
    job = reg.job_command(next(k for k in reg.jobs() if k[1].id == b.id and k[0].name == "evaluate_released")[0],
                          b.id)
    assert job.endswith("--checkpoint data/weights/vitpose/vitpose-b.pth --released")


def test_a_released_item_must_be_a_download_item(tmp_path):
    path = _write_params(tmp_path, lambda p: p["released"].update({"vitpose-x": {"model": "vitpose-h"}}))
    with pytest.raises(ConfigError, match=r"released\.vitpose-x: not an item of .*manifest\.yaml"):
        Registry(load_params(path), "paper", path)


def test_plan_shows_teacher_then_token_then_student():
    """Table 8's knowledge-token student: ViTPose-L (the Table 2 run) → its token → the student."""
    reg = Registry(load_params(PARAMS), "smoke")
    text = plan_text(reg, table=8)
    student = "vitpose-b-classic-256x192-kd-token-vitpose-l"
    block = text[text.index(f"row 'token' -> run {student}"):text.index("row 'heatmap'")]
    teacher = block.index("teacher: run vitpose-l-classic-256x192:")
    token = block.index("token: run token-vitpose-l-classic-256x192:")
    finetune = block.index("finetune: train", token)
    assert teacher < token < finetune and "after token run token-vitpose-l-classic-256x192" in block[finetune:]
    token = reg.get(reg.get(student).upstream["token"])
    assert token.stage == "token" and token.upstream == {"teacher": "vitpose-l-classic-256x192"}
    # A heatmap-only student needs the teacher and no token job.
    heat = reg.get("vitpose-b-classic-256x192-kd-heatmap-vitpose-l")
    assert heat.upstream["teacher"] == "vitpose-l-classic-256x192" and "token" not in heat.upstream


def test_table3_rows_each_finetune_from_their_own_pretraining():
    """Every pose-data Table 3 row consumes one MAE pre-training run on its set; the ImageNet-1k row uses
    the released MAE weights at paper scale and starts from random weights at smoke (imagenet_init:
    none), where it could also be pre-trained here (imagenet_init: ours)."""
    from workflow.kinds import KINDS

    params = load_params(PARAMS)
    reg = Registry(params, "smoke")
    table3 = [reg.get(r["run"]) for r in reg.rows if r["table"] == 3]
    assert [r.spec["pretrain"] for r in table3] == ["imagenet-1k", "coco-crop", "coco+aic-crop", "coco+aic-nocrop"]
    assert "pretrain" not in table3[0].upstream and reg.resolve(table3[0].id).pretrained is None
    rows = table3[1:]
    ups = [reg.get(r.upstream["pretrain"]) for r in rows]
    assert [u.spec["pretrain"] for u in ups] == ["coco-crop", "coco+aic-crop", "coco+aic-nocrop"]
    ours = load_params(PARAMS)
    ours["scales"]["smoke"]["imagenet_init"] = "ours"
    first = Registry(ours, "smoke").get(table3[0].id)
    assert first.upstream == {"pretrain": "mae-vitpose-b-imagenet-1k"}
    assert all(u.stage == "pretrain" and u.missing is None for u in ups)
    for run, up in zip(rows, ups):
        cfg = reg.resolve(run.id)
        assert cfg.pretrained == up.file("mae")
        inputs = reg.job_inputs(KINDS["finetune"], run.id)
        assert inputs["pretrain"] == up.file("mae") and "pretrained" not in inputs
        pcfg = reg.resolve(up.id)
        assert pcfg.pretraining.set == up.spec["pretrain"] and pcfg.data is None
        assert pcfg.pretraining.index == f"data/smoke/pretrain/{up.spec['pretrain']}.json"
    paper = Registry(params, "paper")
    base = paper.get(next(r["run"] for r in paper.rows if r["table"] == 3 and r["row"] == "imagenet-1k"))
    assert "pretrain" not in base.upstream
    assert paper.resolve(base.id).pretrained == "data/weights/mae_pretrain_vit_base.pth"
    mae = paper.resolve("mae-vitpose-b-coco-crop")
    # MAE's recipe at paper scale: effective batch 4096, lr = 1.5e-4 x 4096 / 256, 1600 epochs
    assert mae.train.batch_size == 4096 and mae.train.lr == pytest.approx(2.4e-3)
    assert mae.train.epochs == 1600 and mae.train.warmup_epochs == 40 and mae.train.lr_schedule == "cosine"
    assert tuple(mae.train.betas) == (0.9, 0.95) and mae.train.weight_decay == 0.05
    assert mae.train.layer_decay == 1.0 and mae.train.grad_clip is None
    assert (mae.pretraining.decoder_dim, mae.pretraining.decoder_depth, mae.pretraining.decoder_heads) == (512, 8, 16)
    assert mae.pretraining.mask_ratio == 0.75 and list(mae.model.input_size) == [224, 224]
    assert mae.model.vit_args()["embed_dim"] == 768 and mae.model.vit_args()["drop_path_rate"] == 0.0


def test_multi_dataset_runs_resolve_one_decoder_per_dataset():
    reg = Registry(load_params(PARAMS), "paper")
    cfg = reg.resolve("vitpose-b-classic-256x192-coco+aic+mpii")
    assert [d.dataset for d in cfg.datasets] == ["coco", "aic", "mpii"]
    assert cfg.train.batch_size == 1024 and cfg.train.lr == 1e-3  # Table 1's multi-dataset column
    assert cfg.extra_data[1].gt_mat == "data/mpii/annotations/mpii_gt_val.mat"
    assert all(d.use_gt_boxes_for_eval for d in cfg.extra_data) and not cfg.data.use_gt_boxes_for_eval
    assert all(d.ratio is None for d in cfg.datasets)  # default: uniform over the union
    coco_only = reg.resolve("vitpose-b-classic-256x192")
    assert coco_only.extra_data == [] and coco_only.train.batch_size == 512


def test_dvc_yaml_is_current():
    proc = subprocess.run([sys.executable, "-m", "workflow.dvcgen", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_dvcgen_check_detects_a_stale_file(tmp_path):
    path = _write_params(tmp_path, lambda p: p["tables"]["table4"]["rows"].pop("576x432"))
    proc = subprocess.run([sys.executable, "-m", "workflow.dvcgen", "--check", "--params", str(path)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "stale" in proc.stderr


def test_dvc_params_are_per_row():
    """Changing one row's parameter must only invalidate that run: its DVC params name the row."""
    reg = Registry(load_params(PARAMS), "smoke")
    doc = dvcgen.pipeline(reg, None)
    rid = "vitpose-b-classic-256x192-r2-window8x8-shift"
    stage = doc["stages"][dvcgen.stage_name("config", rid)]
    keys = stage["params"][0]["params.yaml"]
    assert "tables.table5.rows.window+shift" in keys
    assert not any(k.startswith("tables.") and "window+shift" not in k for k in keys)
    # Only the config stage reads params.yaml; the run's jobs read the config.json it writes.
    for kind in ("finetune", "benchmark", "evaluate"):
        job = doc["stages"][dvcgen.stage_name(kind, rid)]
        assert "params" not in job and f"results/smoke/{rid}/config.json" in job["deps"]
        assert f"--config results/smoke/{rid}/config.json" in job["cmd"]


@pytest.mark.parametrize("scale", ["smoke", "paper"])
def test_every_run_config_is_accepted_by_the_stages(scale):
    """What the registry resolves is exactly what the engine validates (no run fails at start-up)."""
    from vitpose.config import RunConfig

    reg = Registry(load_params(PARAMS), scale)
    reg.validate_runs()
    for run in reg.runs.values():
        cfg = reg.run_config(run.id)
        if run.missing:
            assert cfg["unavailable"] == run.missing
            continue
        parsed = RunConfig.from_dict(cfg)
        assert parsed.run == run.id and parsed.scale == scale
        # config.json is written once and re-read by every job: the same hash both ways (a run without a
        # train section, e.g. a test-dev submission, included)
        assert RunConfig.from_dict(json.loads(json.dumps(parsed.to_dict()))).hash == parsed.hash, run.id
        spec = reg.reference_member(run).spec if run.stage == "testdev" else run.spec  # the largest member's
        size = reg.pretraining_recipe()["input"] if run.stage == "pretrain" else spec["input"]
        want = [int(v) for v in size.split("x")]
        if run.stage == "pretrain":  # the MAE input is the scale's own, not scaled
            assert list(parsed.model.input_size) == want, run.id
            continue
        # Table rows: the scale's geometry (input_scale), rounded to a multiple of the backbone stride
        factor = reg.scale_cfg["input_scale"]
        got = list(parsed.model.input_size)
        assert all(g % 8 == 0 and abs(g - w * factor) <= 16 for g, w in zip(got, want)), (run.id, got)


def test_stage_refuses_an_unavailable_run_at_once():
    proc = subprocess.run([sys.executable, "-m", "stages.finetune", "--run",
                           "resnet50-classic-256x192", "--scale", "paper"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "resnet_imagenet_weights" in proc.stderr and "Traceback" not in proc.stderr
