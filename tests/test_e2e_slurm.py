"""The smoke pipeline through submitit on a real single-node SLURM cluster (scripts/slurm_cluster.sh).

- one run's finetune + evaluate on SLURM writes the same metrics as the local launcher (same seed);
- the MAE pre-training job, requeued mid-epoch on SLURM (`scontrol requeue`: SIGTERM, state saved,
  the job requeued and resumed), ends with the weights of an uninterrupted run;
- `snakemake <a Table 3 run> --profile workflow/profiles/slurm` completes on the cluster, its MAE
  pre-training upstream included.
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
# A run without an MAE upstream (ResNets start from random init at smoke): finetune + evaluate only.
RUN = "resnet50-classic-256x192"
MAE_RUN = "mae-vitpose-b-coco-crop"
SLURM = ["--launcher", "slurm", "--launch-config", "workflow/profiles/slurm/launch.yaml"]


def ok(cmd: list[str], cwd: Path, timeout: int = 1800) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="2"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory, slurm_cluster) -> Path:
    """A copy of the project whose smoke schedules are one epoch (two of MAE): these tests are about the
    launcher, not learning (the learning floor is tests/test_e2e_dag.py's)."""
    import yaml

    dest = copy_project(tmp_path_factory.mktemp("slurm_project"))
    params = yaml.safe_load((dest / "params.yaml").read_text())
    smoke = params["scales"]["smoke"]
    smoke["train"]["epochs"] = 1
    smoke["pretraining"]["epochs"] = 2
    smoke["pretraining"]["warmup_epochs"] = 1  # fewer than the epochs (the smoke recipe warms up 2)
    smoke["eval"]["every_epochs"] = None
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
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


def _pretraining_config(project: Path) -> tuple[Path, int]:
    """A hand-written copy of the MAE run's resolved config with a longer epoch (batch 4: 40+ iterations
    per epoch) and a log line per iteration, so that a requeue lands mid-epoch; its index built."""
    reg = Registry(load_params(project / "params.yaml"), "smoke", project / "params.yaml")
    pset = reg.get(MAE_RUN).spec["pretrain"]
    ok([PY, *reg.pretrain_index_command(pset).split()], project)
    doc = reg.run_config(MAE_RUN)
    doc["train"].update(batch_size=4, epochs=3, log_every_iters=1)
    path = project / "work" / "requeue" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))  # no config_hash: a hand-written config (accepted as such)
    images = json.loads((project / reg.pretrain_index(pset)).read_text())["counts"]["images"]
    return path, images // 4


def _logged_iters(work: Path) -> list[int]:
    try:
        return [json.loads(line)["iter"] for line in (work / "train_log.jsonl").read_text().splitlines()]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def test_requeued_pretraining_job_ends_with_the_weights_of_an_uninterrupted_run(project):
    import torch
    from test_slurm_launch import _job_id, wait_for
    from vitpose.launch import LaunchConfig

    config, ipe = _pretraining_config(project)
    assert ipe >= 20
    base = [PY, "-m", "stages.pretrain", "--config", str(config), "--no-progress"]
    ok([*base, "--work-dir", "work/requeue/ref", "--out", "work/requeue/ref.pth", "--launcher", "local"], project)

    work = project / "work" / "requeue" / "slurm"
    proc = subprocess.Popen([*base, "--work-dir", str(work), "--out", "work/requeue/slurm.pth", *SLURM],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="2"))
    try:
        # Requeue one iteration into the second epoch: the signal lands a few iterations later, mid-epoch.
        wait_for(lambda: any(i > ipe for i in _logged_iters(work)), 300, "pre-training to reach epoch 2")
        cfg = LaunchConfig(launcher="slurm", folder=str(project / "work/submitit"))
        job_id = _job_id(cfg, f"smoke/{MAE_RUN}/pretrain")
        assert job_id is not None
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
        wait_for(lambda: proc.poll() is not None, 600, "the requeued job to finish", job_id)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-6000:]
    summary = json.loads(out[out.index('{\n  "run"'):out.rindex("}") + 1])  # the stage prints it last
    resumed = summary["resumed_from"]
    assert ipe < resumed < summary["total_iters"] and resumed % ipe, summary  # resumed mid-epoch
    logs = "".join(p.read_text() for p in (project / "work/submitit/smoke" / MAE_RUN / "pretrain").glob("*_log.err"))
    assert "caught SIGTERM" in logs

    def mae(name: str) -> dict:
        return torch.load(project / "work/requeue" / name, map_location="cpu", weights_only=True)["model"]

    a, b = mae("ref.pth"), mae("slurm.pth")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_snakemake_with_the_slurm_profile(project):
    """Snakemake's SLURM profile: every launcher job of a run goes through SLURM. One run (not a whole
    table: the same rules, several times) keeps CI short: Table 3's COCO-crop row, MAE upstream included."""
    run = "vitpose-b-classic-256x192-pt-coco-crop"
    out = ok([str(BIN / "snakemake"), f"results/smoke/{run}/metrics.json", "--profile",
              "workflow/profiles/slurm"], project, timeout=3000)
    assert out.count("--launcher slurm") >= 4  # pretrain (its MAE upstream), finetune, benchmark, evaluate
    assert "stages.pretrain" in out
    m = load_metrics(project / "results/smoke" / run / "metrics.json")
    assert m["run"] == run and m["pretraining"]["run"] == "mae-vitpose-b-coco-crop"
    record = json.loads((project / "work/submitit/smoke" / run / "finetune" / "job.json").read_text())
    sacct = subprocess.run(["sacct", "-n", "-X", "-j", str(record["job_id"]), "-o", "State"],
                           capture_output=True, text=True, timeout=60).stdout
    assert "COMPLETED" in sacct
