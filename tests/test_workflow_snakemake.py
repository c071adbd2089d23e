"""Real Snakemake on the real Snakefile: lint, dry runs of both scales, fail-fast behaviour."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from workflow.registry import REPO, Registry
from workflow.schema import load_params

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--nolock", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_lint_passes():
    proc = snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_paper_scale_dry_run_lists_every_run_without_data():
    proc = snakemake("-n", "all", "--config", "scale=paper")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert not Path(REPO, "data", "coco").exists() or True  # the dry run needs no data either way
    reg = Registry(load_params(REPO / "params.yaml"), "paper")
    for table in range(2, 11):
        for run in reg.table_runs(table):
            kind = "unavailable" if run.missing else "finetune"
            assert f"{kind} {run.id}:" in out, (table, run.id)
    # The paper's schedule and batch sizes are what the jobs will use.
    line = re.search(r"finetune vitpose-h-classic-256x192: (.*)", out).group(1)
    assert "210 epochs" in line and "batch 512" in line and "vitpose-h," in line
    assert "finetune vitpose-b-classic-576x432: " in out
    # Downloads feed training: data and MAE weight jobs are in the DAG.
    assert "stages.download coco --scale paper" in out
    assert "stages.download mae_pretrain_vit_base --scale paper" in out


def test_smoke_table5_dry_run_has_its_seven_runs():
    proc = snakemake("-n", "table5")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["finetune"] == "7" and counts["evaluate"] == "7" and counts["benchmark"] == "7"
    assert counts["data"] == "1"


def test_table_of_a_missing_capability_fails_at_once():
    reg = Registry(load_params(REPO / "params.yaml"), "smoke")
    if reg.table_blocker(7) is None:
        return  # multi-dataset training exists: nothing to refuse
    proc = snakemake("-n", "table7")
    assert proc.returncode != 0
    assert "multi_dataset" in proc.stdout + proc.stderr


def test_misspelt_config_key_fails_before_any_job(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluation"]["flip_tset"] = True
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    proc = snakemake("-n", "table5", "--configfile", str(bad))
    assert proc.returncode != 0
    assert "evaluation.flip_tset" in proc.stdout + proc.stderr
    proc = snakemake("-n", "table5", "--config", "seed=minus-one")
    assert proc.returncode != 0 and "seed" in proc.stdout + proc.stderr
