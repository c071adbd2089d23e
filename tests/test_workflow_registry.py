"""params.yaml validation, the registry's expansion into runs, and the generated dvc.yaml."""
from __future__ import annotations

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
    assert smoke["model"]["window_size"] == [16, 12] and smoke["model"]["ratio"] == 2
    assert smoke["model"]["shift"] and smoke["model"]["pool"]
    # smoke: the synthetic ImageNet stand-in, pre-trained here with MAE (imagenet_init: ours)
    assert smoke["pretrained"] == "results/smoke/mae-vitpose-b-imagenet-1k/mae_pretrain.pth"
    assert Registry(params, "smoke").get(smoke["run"]).upstream == {"pretrain": "mae-vitpose-b-imagenet-1k"}
    # Milestones keep their relative place when the schedule is shortened.
    e = smoke["train"]["epochs"]
    assert smoke["train"]["milestones"] == pytest.approx([170 / 210 * e, 200 / 210 * e])


def test_missing_capabilities_are_explicit():
    reg = Registry(load_params(PARAMS), "smoke")
    missing = {r.id: r.missing for r in reg.runs.values() if r.missing}
    assert "vitpose-g-classic-576x432-coco+aic" in missing
    assert "vitae_g" in missing["vitpose-g-classic-576x432-coco+aic"]
    for table, cap in [(3, "mae_pretraining"), (7, "multi_dataset"), (8, "distillation"), (10, "vitae_g")]:
        if not CAPABILITIES[cap][0]:
            assert cap in reg.table_blocker(table)
        else:
            assert reg.table_blocker(table) is None
    assert reg.table_blocker(5) is None and reg.table_blocker(9) is None
    plan = reg.table_plan()
    table10 = [p for p in plan if p["table"] == 10]
    assert table10 and all(p["unavailable"] for p in table10)
    assert all(not p["unavailable"] for p in plan if p["table"] == 8)


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
    """Every Table 3 row consumes one MAE pre-training run on its set (at smoke also ImageNet-1k, whose
    stand-in is pre-trained here); at paper scale the ImageNet-1k row uses the released MAE weights."""
    from workflow.kinds import KINDS

    params = load_params(PARAMS)
    reg = Registry(params, "smoke")
    rows = [reg.get(r["run"]) for r in reg.rows if r["table"] == 3]
    ups = [reg.get(r.upstream["pretrain"]) for r in rows]
    assert [u.spec["pretrain"] for u in ups] == ["imagenet-1k", "coco-crop", "coco+aic-crop", "coco+aic-nocrop"]
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
        size = reg.pretraining_recipe()["input"] if run.stage == "pretrain" else run.spec["input"]
        assert list(parsed.model.input_size) == [int(v) for v in size.split("x")]


def test_stage_refuses_an_unavailable_run_at_once():
    proc = subprocess.run([sys.executable, "-m", "stages.finetune", "--run",
                           "vitpose-g-classic-576x432-coco+aic", "--scale", "smoke"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "vitae_g" in proc.stderr and "Traceback" not in proc.stderr
