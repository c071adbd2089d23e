"""The local launcher end to end (submitit's LocalExecutor, real processes, no SLURM)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from vitpose.launch import JobConflict, JobFailed, LaunchConfig, run_folder, run_job
from vitpose.launch.runner import _orchestrator_lock
from vitpose.launch.selftest import ddp_reference, ddp_train, fail, resumable_train, seeded_value

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path: Path, **kw: Any) -> LaunchConfig:
    return LaunchConfig(launcher="local", folder=str(tmp_path / "submitit"), timeout_min=10, **kw)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def progress_step(work: Path) -> int:
    try:
        return json.loads((work / "progress.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


class Background:
    """run_job in a thread, so that the test can interrupt the job while the launcher waits on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=args, kwargs=kwargs, daemon=True)
        self._thread.start()

    def _run(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.result = run_job(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by join()
            self.error = exc

    def join(self, timeout: float) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"run_job did not return within {timeout}s"
        if self.error is not None:
            raise self.error
        return self.result


def test_local_job_returns_the_in_process_result(tmp_path: Path) -> None:
    result = run_job(seeded_value, {"seed": 3}, "t/value", _cfg(tmp_path), progress=False)
    assert result == seeded_value(3)
    record = json.loads((tmp_path / "submitit/t/value/job.json").read_text())
    assert record["launcher"] == "local" and record["run_key"] == "t/value"


def test_local_ddp_two_tasks_end_with_identical_parameters(tmp_path: Path) -> None:
    work = tmp_path / "ddp"
    work.mkdir()
    result = run_job(ddp_train, {"work_dir": str(work), "steps": 5}, "t/ddp", _cfg(tmp_path, tasks_per_node=2),
                     progress=False)
    assert result["world_size"] == 2 and result["backend"] == "gloo" and result["rank"] == 0
    assert len(result["digests"]) == 2 and len(set(result["digests"])) == 1
    # gradients were really averaged across the two shards: same weights as one process on both batches
    ref = ddp_reference(seed=0, steps=5, world_size=2)
    for got, want in zip(result["weights"], ref):
        assert got == pytest.approx(want, abs=1e-5)
    assert sorted(p.name for p in work.iterdir()) == ["weights.pt"]  # rank 0 alone wrote


def test_local_ddp_requeue_signal_saves_and_resumes(tmp_path: Path) -> None:
    """USR2 to rank 0 (what submitit's local controller sends before the time limit) → both DDP ranks stop at
    the same step → rank 0 saves → requeued (exit 144, the controller restarts the tasks) → resumed."""
    ref = resumable_train(str(tmp_path / "ref"), steps=30, shards=2)  # one process, both shards
    work = tmp_path / "run"
    kwargs = {"work_dir": str(work), "steps": 30, "step_sleep_s": 0.1, "distributed": True}
    cfg = _cfg(tmp_path, tasks_per_node=2)
    bg = Background(resumable_train, kwargs, "t/resume", cfg, progress=False)
    wait_until(lambda: progress_step(work) >= 4, 60, "training to start")
    os.kill(json.loads((work / "progress.json").read_text())["pid"], signal.SIGUSR2)
    result = bg.join(120)
    assert not result["stopped"] and result["step"] == 30
    starts = result["starts"]
    assert len(starts) == 2 and starts[0] == 0 and 4 <= starts[1] < 30  # resumed mid-way, not from zero
    for got, want in zip(result["weights"], ref["weights"]):
        assert got == pytest.approx(want, abs=1e-5)
    logs = "".join(p.read_text() for p in run_folder(cfg, "t/resume").glob("*_log.err"))
    assert "caught the requeue signal" in logs and "state saved in" in logs  # saved on the signal itself
    assert "exiting without a result" in logs  # rank 1 stopped at the same step and left


def test_local_failure_raises_with_error_and_log(tmp_path: Path) -> None:
    with pytest.raises(JobFailed) as err:
        run_job(fail, {"message": "boom 42"}, "t/fail", _cfg(tmp_path), progress=False)
    exc = err.value
    assert exc.error == "RuntimeError: boom 42"
    assert exc.log_path.exists() and "boom 42" in exc.log_path.read_text()
    assert f"log: {exc.log_path}" in str(exc) and "Traceback" in str(exc)


def _selftest(tmp_path: Path, *args: str, **popen: Any) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vitpose.launch.selftest", *args, "--no-progress",
           "--launch-set", f"folder={tmp_path / 'submitit'}", "--launch-set", "timeout_min=10"]
    return subprocess.Popen(cmd, cwd=tmp_path, text=True, **popen)


def test_stage_cli_exits_nonzero_with_error_and_log_path(tmp_path: Path) -> None:
    proc = _selftest(tmp_path, "fail", "--message", "boom 43", "--launcher", "local",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert out == ""
    assert "error: local job" in err and "RuntimeError: boom 43" in err
    log = Path(err.split("log: ", 1)[1].split("\n", 1)[0])
    assert log.exists() and "boom 43" in log.read_text()


def test_bad_launch_config_exits_2(tmp_path: Path) -> None:
    proc = _selftest(tmp_path, "value", "--launch-set", "nodes=0", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "error: " in err and "nodes must be >= 1" in err


def test_restarted_orchestrator_reattaches_instead_of_resubmitting(tmp_path: Path) -> None:
    work = tmp_path / "run"
    with open(tmp_path / "orchestrator1.log", "w") as log:
        first = _selftest(tmp_path, "resume", "--work-dir", str(work), "--steps", "25", "--step-sleep", "0.15",
                          "--run-key", "t/attach", stdout=log, stderr=log)
    try:
        wait_until(lambda: progress_step(work) >= 2, 60, "the job to start training")
    finally:
        first.kill()  # the orchestrator dies; its job does not
        first.wait()
    cfg = _cfg(tmp_path)
    job_id = json.loads((run_folder(cfg, "t/attach") / "job.json").read_text())["job_id"]
    kwargs = {"work_dir": str(work), "steps": 25, "step_sleep_s": 0.15}
    with pytest.raises(JobConflict, match=f"live local job {job_id}"):  # a different config must not attach
        run_job(resumable_train, kwargs, "t/attach", cfg, config_hash="another-config", progress=False)
    result = run_job(resumable_train, kwargs, "t/attach", cfg, progress=False)
    assert result["starts"] == [0]  # one start: the function ran once, to the end
    assert result["digest"] == resumable_train(str(tmp_path / "ref"), steps=25)["digest"]
    assert json.loads((run_folder(cfg, "t/attach") / "job.json").read_text())["job_id"] == job_id


def test_second_orchestrator_of_a_run_is_refused(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with _orchestrator_lock(run_folder(cfg, "t/busy"), "t/busy"):
        with pytest.raises(JobConflict, match=f"already being launched by process {os.getpid()}"):
            run_job(seeded_value, {"seed": 0}, "t/busy", cfg, progress=False)
    assert not list(run_folder(cfg, "t/busy").glob("*_submitted.pkl"))  # nothing was submitted
