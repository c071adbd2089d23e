"""One resolution per run: rows merge deeply, nested keys are named, config.json is the run's one config."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from vitpose.config import RunConfig, load_run_config_file
from vitpose.utils.errors import ConfigError
from workflow.registry import REPO, Registry, deep_merge
from workflow.schema import coerce_overrides, load_params, validate_params

PARAMS = REPO / "params.yaml"


def params_with(edit) -> dict:
    params = yaml.safe_load(PARAMS.read_text())
    edit(params)
    return validate_params(params, "test params")


def test_deep_merge_keeps_the_baselines_nested_keys():
    base = {"a": 1, "distill": {"heatmap": False, "token": False, "teacher": "none"}}
    merged = deep_merge(base, {"distill": {"token": True, "teacher": "vitpose-l"}})
    assert merged == {"a": 1, "distill": {"heatmap": False, "token": True, "teacher": "vitpose-l"}}
    assert base["distill"]["token"] is False  # the baseline is not modified


def test_a_partial_nested_row_resolves():
    params = params_with(lambda p: p["tables"]["table8"]["rows"].update(
        token={"distill": {"token": True, "teacher": "vitpose-l"}}))
    reg = Registry(params, "smoke")
    rid = next(r["run"] for r in reg.rows if r["table"] == 8 and r["row"] == "token")
    spec = reg.get(rid).spec
    assert spec["distill"] == {"heatmap": False, "token": True, "teacher": "vitpose-l"}
    assert rid == "vitpose-b-classic-256x192-kd-token-vitpose-l"
    # The student's teacher is the ViTPose-L COCO run Tables 2 and 9 train: one run for three rows.
    # (a token-only student reaches it through its token job).
    def teacher(run):
        up = reg.get(run).upstream
        return up.get("teacher") or reg.get(up["token"]).upstream["teacher"]
    teachers = {teacher(r["run"]) for r in reg.rows if r["table"] == 8 and r["row"] != "none"}
    assert teachers == {"vitpose-l-classic-256x192"}
    assert any(s["table"] == 2 for s in reg.get("vitpose-l-classic-256x192").serves)


def test_an_unknown_nested_row_key_is_named_with_its_full_path():
    with pytest.raises(ConfigError, match=r"tables\.table8\.rows\.token\.distill\.tokn: unknown key"):
        params_with(lambda p: p["tables"]["table8"]["rows"].update(token={"distill": {"tokn": True}}))


def test_optional_keys_get_their_declared_defaults():
    params = params_with(lambda p: p["scales"]["smoke"]["train"].pop("num_workers"))
    assert params["scales"]["smoke"]["train"]["num_workers"] == 4
    assert params["scales"]["smoke"]["download"] is True and params["scales"]["smoke"]["exact_counts"] is True


def test_snakemake_string_overrides_are_typed_like_params_yaml():
    reference = yaml.safe_load(PARAMS.read_text())
    # What Snakemake's --config 'scales={smoke: {train: {lr: 0.002}}}' and 'tables=...' deliver.
    raw = {"seed": 1, "scales": {"smoke": {"train": {"lr": "0.002", "epochs": "3"}}},
           "tables": {"table5": {"rows": {"full": {"shift": "true", "input": "256x192"}}}}}
    typed = coerce_overrides(raw, reference)
    assert typed["scales"]["smoke"]["train"] == {"lr": 0.002, "epochs": 3}
    assert typed["tables"]["table5"]["rows"]["full"] == {"shift": True, "input": "256x192"}


def test_every_run_is_validated_whole_before_any_job():
    params = params_with(lambda p: p["tables"]["table5"]["rows"]["window"].update(window="64x64"))
    reg = Registry(params, "smoke")
    with pytest.raises(ConfigError) as err:
        reg.validate_runs()
    msg = str(err.value)
    # (at smoke, input_scale 0.5: the 64x64 window is 32x32 on the 16x12 grid of 128x96 at ratio 2)
    assert "tables.table5.rows.window" in msg and "window_size" in msg and "larger than the 16x12 token grid" in msg


def test_config_json_is_the_resolved_config_and_its_hash(tmp_path):
    out = tmp_path / "config.json"
    proc = subprocess.run([sys.executable, "-m", "workflow.registry", "resolve", "vitpose-b-classic-256x192",
                           "--scale", "smoke", "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    reg = Registry(load_params(PARAMS), "smoke")
    cfg = load_run_config_file(out)
    assert doc["config_hash"] == cfg.hash == reg.config_hash("vitpose-b-classic-256x192")
    assert cfg.synthetic is True and cfg.paths.result_dir == "results/smoke/vitpose-b-classic-256x192"
    assert cfg.paths.work_dir == "work/smoke/vitpose-b-classic-256x192"
    assert "base_batch" not in doc["train"]  # the lr is the rate for batch_size: no second batch key
    # A hand-edited file no longer matches its hash: refused, naming the file and the key.
    doc["seed"] = 7
    out.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"config\.json: config_hash"):
        load_run_config_file(out)
    # A hand-written config without a hash is accepted as it is.
    del doc["config_hash"]
    out.write_text(json.dumps(doc))
    assert load_run_config_file(out).seed == 7


def test_synthetic_is_the_scales_own_key():
    params = params_with(lambda p: p["scales"].update(
        mine=dict(p["scales"]["smoke"], synthetic=False, data_root="/somewhere")))
    cfg = Registry(params, "mine").resolve("vitpose-b-classic-256x192")
    assert isinstance(cfg, RunConfig) and cfg.synthetic is False and cfg.scale == "mine"
    assert Registry(params, "mine").download_command("coco").startswith(
        "-m stages.download coco --scale paper --data-root /somewhere")


def test_plan_prints_the_job_graph_in_the_papers_words():
    proc = subprocess.run([sys.executable, "-m", "workflow.registry", "plan", "--table", "5"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Table 5 (smoke scale): Attention type at 1/8 features" in out
    assert "row 'window+shift' -> run vitpose-b-classic-256x192-r2-window8x8-shift" in out
    assert "window attention 8x8 (as 4x4) +shift" in out  # the smoke geometry, input_scale 0.5
    for kind in ("config:", "finetune:", "benchmark:", "evaluate:"):
        assert kind in out
    plan8 = subprocess.run([sys.executable, "-m", "workflow.registry", "plan", "--table", "8"], cwd=REPO,
                           capture_output=True, text=True).stdout
    assert "distillation from teacher vitpose-l-classic-256x192" in plan8


def test_multi_dataset_ratios_reach_each_dataset_and_a_missing_one_is_named():
    params = params_with(lambda p: p.update(multi_dataset={"ratios": {"coco": 2, "aic": 1, "mpii": 0.5}}))
    cfg = Registry(params, "smoke").resolve("vitpose-b-classic-256x192-coco+aic+mpii")
    assert [d.ratio for d in cfg.datasets] == [2, 1, 0.5]
    assert Registry(params, "smoke").resolve("vitpose-b-classic-256x192").data.ratio is None  # one dataset
    params = params_with(lambda p: p.update(multi_dataset={"ratios": {"coco": 1, "aic": 1}}))
    with pytest.raises(ConfigError, match=r"multi_dataset\.ratios: no ratio for dataset 'mpii'"):
        Registry(params, "smoke").resolve("vitpose-b-classic-256x192-coco+aic+mpii")
    with pytest.raises(ConfigError, match=r"multi_dataset\.ratios"):
        params_with(lambda p: p.update(multi_dataset={"ratios": {"coco": -1}}))
