"""A user's own scale end to end: real-format data in place, `--config` overrides reaching the jobs.

A copy of the project gets a scale `mydata` (`synthetic: false`, `download: false`, `exact_counts:
false`) whose data_root is a tiny COCO-format dataset the test writes (the synthetic generator's people,
written as plain COCO files: nothing marks it as generated, so the pipeline treats it as a user's real
data). `snakemake table5 --config scale=mydata seeds=[1] 'scales={mydata: {train: {lr: 0.002}}}'` must
validate the root in place, train with seed 1 and lr 0.002, and say so in config.json and metrics.json.

To keep CI short, the copy's Table 5 keeps two of its seven rows (full and window attention): the code
path is the same for every row.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import copy_project
from vitpose.data.synthetic import generate_synthetic_coco
from vitpose.report.metrics import load_metrics

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
RUNS = ("vitpose-b-classic-256x192-r2-fp16", "vitpose-b-classic-256x192-r2-window8x8")


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800, env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    dest = copy_project(tmp_path_factory.mktemp("custom"))
    root = tmp_path_factory.mktemp("pose_data")
    generate_synthetic_coco(root / "coco", seed=3, num_train=40, num_val=8, progress=False)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    smoke = params["scales"]["smoke"]
    params["scales"]["mydata"] = {
        "description": "a user's own COCO-layout root (test)", "synthetic": False, "data_root": str(root),
        "download": False, "exact_counts": False, "models": smoke["models"],
        "train": dict(smoke["train"], epochs=1), "eval": smoke["eval"], "benchmark": smoke["benchmark"],
        "imagenet_init": "none"}  # random init: no ImageNet on this root (and no MAE job in this test)
    rows = params["tables"]["table5"]["rows"]
    params["tables"]["table5"]["rows"] = {k: rows[k] for k in ("full", "window")}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def test_table5_on_a_users_root_with_overrides(project):
    proc = run([str(BIN / "snakemake"), "table5", "--config", "scale=mydata", "seeds=[1]",
                "scales={mydata: {train: {lr: 0.002}}}"], project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["finetune"] == "2" and counts["config"] == "2" and counts["data"] == "1"
    # The data rule validated the root in place and records its (subset) counts in the marker.
    root = Path(yaml.safe_load((project / "params.yaml").read_text())["scales"]["mydata"]["data_root"])
    marker = json.loads((root / "coco" / ".complete.json").read_text())
    assert marker["in_place"] is True and marker["synthetic"] is False
    assert marker["counts"]["train_images"] == 40 and marker["counts"]["val_images"] == 8
    for rid in RUNS:
        cfg = json.loads((project / "results/mydata" / rid / "config.json").read_text())
        assert cfg["seed"] == 1 and cfg["train"]["lr"] == 0.002 and cfg["synthetic"] is False
        assert cfg["data"]["root"] == f"{root}/coco"
        m = load_metrics(project / "results/mydata" / rid / "metrics.json")
        assert m["config"]["seed"] == 1 and m["config"]["train"]["lr"] == 0.002
        assert m["config_hash"] == cfg["config_hash"] and m["synthetic"] is False
        log = (project / "work/mydata" / rid / "train_log.jsonl").read_text().splitlines()
        assert max(json.loads(line)["lr"] for line in log if line.strip()) <= 0.002 + 1e-12
    assert (project / "paper_tables/mydata/table5.md").exists()


def test_changing_an_override_reruns_exactly_the_runs(project):
    proc = run([str(BIN / "snakemake"), "-n", "table5", "--config", "scale=mydata", "seeds=[2]",
                "scales={mydata: {train: {lr: 0.002}}}"], project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["config"] == "2" and counts["finetune"] == "2" and "data" not in counts
    proc = run([str(BIN / "snakemake"), "-n", "table5", "--config", "scale=mydata", "seeds=[1]",
                "scales={mydata: {train: {lr: 0.002}}}"], project)
    assert "Nothing to be done" in proc.stdout + proc.stderr
