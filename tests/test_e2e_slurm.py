"""The smoke pipeline through submitit on a real single-node SLURM cluster (scripts/slurm_cluster.sh).

- one run's finetune + evaluate on SLURM writes the same metrics as the local launcher (same seed);
- `snakemake table5 --profile workflow/profiles/slurm` completes on the cluster.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_project
from vitpose.report.metrics import load_metrics
from workflow.registry import Registry
from workflow.schema import load_params

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
PY = sys.executable
BIN = Path(PY).parent
RUN = "vitpose-b-classic-256x192"
SLURM = ["--launcher", "slurm", "--launch-config", "workflow/profiles/slurm/launch.yaml"]


def ok(cmd: list[str], cwd: Path, timeout: int = 1800) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="2"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory, slurm_cluster) -> Path:
    dest = copy_project(tmp_path_factory.mktemp("slurm_project"))
    reg = Registry(load_params(dest / "params.yaml"), "smoke", dest / "params.yaml")
    ok([PY, *reg.download_command("coco").split()], dest)
    return dest


def _train_and_evaluate(project: Path, launch: list[str]) -> dict:
    # The run's one resolved configuration first (the DAG's `config` job), then the stages that read it.
    ok([PY, "-m", "workflow.registry", "resolve", RUN, "--scale", "smoke",
        "--out", f"results/smoke/{RUN}/config.json"], project)
    for stage in ("finetune", "benchmark", "evaluate"):
        extra = ["--out", f"results/smoke/{RUN}/benchmark.json"] if stage == "benchmark" else []
        ok([PY, "-m", f"stages.{stage}", "--run", RUN, "--scale", "smoke", *extra, *launch], project)
    return load_metrics(project / "results" / "smoke" / RUN / "metrics.json")


def test_slurm_run_writes_the_same_metrics_as_local(project):
    local = _train_and_evaluate(project, ["--launcher", "local"])
    weights_local = (project / "results/smoke" / RUN / "model.pth").read_bytes()
    shutil.rmtree(project / "results" / "smoke" / RUN)
    shutil.rmtree(project / "work" / "smoke" / RUN)  # no resumable state: train from scratch
    slurm = _train_and_evaluate(project, SLURM)
    assert slurm["metrics"] == local["metrics"]
    assert slurm["config_hash"] == local["config_hash"]
    # The job really went through SLURM: sacct knows the run's jobs.
    record = json.loads((project / "work/submitit/smoke" / RUN / "finetune" / "job.json").read_text())
    sacct = subprocess.run(["sacct", "-n", "-X", "-j", str(record["job_id"]), "-o", "State"],
                           capture_output=True, text=True, timeout=60).stdout
    assert "COMPLETED" in sacct
    # Same seed, same code: training on SLURM ends with the local run's weights.
    import io

    import torch

    def state(blob: bytes) -> dict:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)["state_dict"]

    a = state(weights_local)
    b = state((project / "results/smoke" / RUN / "model.pth").read_bytes())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_snakemake_with_the_slurm_profile(project):
    """Snakemake's SLURM profile: every launcher job of a run goes through SLURM. One run (not all of
    Table 5: the same rules, seven times) keeps CI short; its table is written from its metrics."""
    run = "vitpose-b-classic-256x192-r2-window8x8"
    out = ok([str(BIN / "snakemake"), f"results/smoke/{run}/metrics.json", "--profile",
              "workflow/profiles/slurm"], project, timeout=3000)
    assert out.count("--launcher slurm") >= 3  # finetune, benchmark, evaluate
    m = load_metrics(project / "results/smoke" / run / "metrics.json")
    assert m["run"] == run and m["config"]["model"]["attention"] == "window"
    record = json.loads((project / "work/submitit/smoke" / run / "finetune" / "job.json").read_text())
    sacct = subprocess.run(["sacct", "-n", "-X", "-j", str(record["job_id"]), "-o", "State"],
                           capture_output=True, text=True, timeout=60).stdout
    assert "COMPLETED" in sacct
