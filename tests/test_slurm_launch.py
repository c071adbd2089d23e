"""The SLURM launcher on a real single-node cluster started by scripts/slurm_cluster.sh (needs root).

The cluster is started once for the session and always stopped at its end, whatever happened.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from vitpose.launch import JobFailed, LaunchConfig, SubmissionError, run_folder, run_job
from vitpose.launch.record import slurm_state
from vitpose.launch.selftest import ddp_reference, ddp_train, resumable_train, seeded_value
from test_launch_local import Background, progress_step

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_cluster.sh"


def _cfg(tmp_path: Path, **kw: Any) -> LaunchConfig:
    return LaunchConfig(launcher="slurm", folder=str(tmp_path / "submitit"), timeout_min=10, poll_s=1.0,
                        cpus_per_task=1, **kw)


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout


def _job_id(cfg: LaunchConfig, run_key: str) -> str | None:
    try:
        return json.loads((run_folder(cfg, run_key) / "job.json").read_text())["job_id"]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _release_requeued(job_id: str) -> None:
    """SLURM holds a requeued job back ~2 minutes (reason BeginTime); let it start at once."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True).stdout
    if out.split() == ["PENDING", "BeginTime"]:
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], capture_output=True)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, job_id: str | None = None) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if job_id is not None:
            _release_requeued(job_id)
        time.sleep(0.25)


def test_cluster_is_up(slurm_cluster: Any) -> None:
    assert _sh("sinfo", "-h", "-N", "-o", "%N %t").split() == ["localhost", "idle"]
    assert subprocess.run(["sacct", "-n", "-X"], capture_output=True, timeout=60).returncode == 0
    assert subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, timeout=60).returncode == 0
    again = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already running" in again.stderr  # idempotent: a healthy cluster is kept


def test_slurm_job_returns_the_local_launchers_result(slurm_cluster: Any, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    on_slurm = run_job(seeded_value, {"seed": 5}, "s/value", cfg, progress=False)
    local = run_job(seeded_value, {"seed": 5}, "s/value-local", cfg.replace(launcher="local"), progress=False)
    assert on_slurm == local == seeded_value(5)
    job_id = _job_id(cfg, "s/value")
    accounting = _sh("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobName,State").split()
    assert accounting == ["vitpose:s/value|COMPLETED"]  # it really went through SLURM


def test_slurm_ddp_two_tasks_end_with_identical_parameters(slurm_cluster: Any, tmp_path: Path) -> None:
    work = tmp_path / "ddp"
    work.mkdir()
    result = run_job(ddp_train, {"work_dir": str(work), "steps": 5}, "s/ddp", _cfg(tmp_path, tasks_per_node=2),
                     progress=False)
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    assert len(set(result["digests"])) == 1
    for got, want in zip(result["weights"], ddp_reference(seed=0, steps=5, world_size=2)):
        assert got == pytest.approx(want, abs=1e-5)
    assert sorted(p.name for p in work.iterdir()) == ["weights.pt"]


def test_slurm_requeued_job_resumes_to_the_same_weights(slurm_cluster: Any, tmp_path: Path) -> None:
    """Interrupted twice: USR2 (time limit / preemption signal: we requeue) and `scontrol requeue`
    (SIGTERM, SLURM requeues); each time state is saved on the signal and the next run resumes from it."""
    steps = 40
    ref = resumable_train(str(tmp_path / "ref"), steps=steps)
    work = tmp_path / "run"
    cfg = _cfg(tmp_path)
    bg = Background(resumable_train, {"work_dir": str(work), "steps": steps, "step_sleep_s": 0.15}, "s/requeue",
                    cfg, progress=False)
    wait_for(lambda: progress_step(work) >= 4, 90, "training to start")
    job_id = _job_id(cfg, "s/requeue")
    assert job_id is not None
    _sh("scancel", "--signal=USR2", job_id)
    starts = lambda: (work / "starts.txt").read_text().split()  # noqa: E731
    wait_for(lambda: len(starts()) == 2 and progress_step(work) >= int(starts()[1]) + 3, 120,
             "the requeued job to resume", job_id)
    _sh("scontrol", "requeue", job_id)
    wait_for(lambda: len(starts()) == 3, 120, "the second requeue to resume", job_id)
    result = bg.join(120)
    first, second, third = map(int, starts())
    assert first == 0 and 4 <= second < third < steps  # resumed each time from the point of interruption
    assert result["starts"] == [first, second, third] and result["digest"] == ref["digest"]
    logs = "".join(p.read_text() for p in run_folder(cfg, "s/requeue").glob("*_log.err"))
    assert "caught the requeue signal" in logs and "caught SIGTERM" in logs
    wait_for(lambda: slurm_state(job_id) == "COMPLETED", 60, "SLURM to mark the job completed")


def test_cancelled_job_fails_the_launcher(slurm_cluster: Any, tmp_path: Path) -> None:
    """A job that ends without a result (here: scancel) ends the wait with JobFailed, it does not hang."""
    work = tmp_path / "run"
    cfg = _cfg(tmp_path)
    bg = Background(resumable_train, {"work_dir": str(work), "steps": 1000, "step_sleep_s": 0.2}, "s/cancel",
                    cfg, progress=False)
    wait_for(lambda: progress_step(work) >= 2, 90, "training to start")
    _sh("scancel", _job_id(cfg, "s/cancel") or "")
    with pytest.raises(JobFailed, match=r"ended \(CANCELLED\) without a result") as err:
        bg.join(60)
    assert "log: " in str(err.value)


def test_refused_submission_names_the_reason(slurm_cluster: Any, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, partition="no-such-partition")
    with pytest.raises(SubmissionError, match=r"(?i)invalid partition") as err:
        run_job(seeded_value, {"seed": 0}, "s/refused", cfg, progress=False)
    assert "slurm refused the job of run 's/refused'" in str(err.value)
    assert _job_id(cfg, "s/refused") is None


def test_stage_cli_reports_a_failed_slurm_job(slurm_cluster: Any, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vitpose.launch.selftest", "fail", "--message", "boom 44", "--launcher", "slurm",
         "--no-progress", "--launch-set", f"folder={tmp_path / 'submitit'}", "--launch-set", "poll_s=1",
         "--launch-set", "timeout_min=10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 1, proc.stderr
    assert "error: slurm job" in proc.stderr and "RuntimeError: boom 44" in proc.stderr
    log = Path(proc.stderr.split("log: ", 1)[1].split("\n", 1)[0])
    assert log.exists() and "boom 44" in log.read_text()


def test_restarted_orchestrator_reattaches_to_the_slurm_job(slurm_cluster: Any, tmp_path: Path) -> None:
    work = tmp_path / "run"
    cfg = _cfg(tmp_path)
    with open(tmp_path / "orchestrator1.log", "w") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "vitpose.launch.selftest", "resume", "--work-dir", str(work), "--steps", "25",
             "--step-sleep", "0.15", "--run-key", "s/attach", "--launcher", "slurm", "--no-progress",
             "--launch-set", f"folder={cfg.folder}", "--launch-set", "timeout_min=10"],
            cwd=tmp_path, stdout=log, stderr=log)
    try:
        wait_for(lambda: _job_id(cfg, "s/attach") is not None, 60, "the job record")
    finally:
        first.kill()  # the orchestrator dies right after submitting; the job lives on
        first.wait()
    job_id = _job_id(cfg, "s/attach")
    result = run_job(resumable_train, {"work_dir": str(work), "steps": 25, "step_sleep_s": 0.15}, "s/attach", cfg,
                     progress=False)
    assert result["starts"] == [0] and result["digest"] == resumable_train(str(tmp_path / "ref"), steps=25)["digest"]
    assert _job_id(cfg, "s/attach") == job_id
    names = _sh("sacct", "-n", "-X", "-P", "--name", "vitpose:s/attach", "-o", "JobID").split()
    assert names == [job_id]  # one job for the run, never two
