"""The job record of a run: which job was submitted for it, and whether that job is still alive.

A restarted orchestrator (Snakemake re-run, a new shell after a lost connection) reads the record of the run
and waits on the job it names if the scheduler still has it pending or running, instead of submitting a
second job that would train into the same work directory.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path

from vitpose.utils.io import atomic_write_json

RECORD_NAME = "job.json"

# sacct/squeue states of a job that may still run (or run again); anything else is final.
LIVE_SLURM_STATES = frozenset({
    "PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
    "SUSPENDED", "RESIZING", "PREEMPTED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD",
})
# Keep waiting in these: live, or the scheduler cannot be asked (better to wait than to run a job twice).
MAY_STILL_RUN = LIVE_SLURM_STATES | {"UNREACHABLE"}


@dataclasses.dataclass(frozen=True)
class JobRecord:
    run_key: str
    launcher: str
    job_id: str
    num_tasks: int
    config_hash: str | None
    submitted_at: float

    @classmethod
    def load(cls, folder: Path) -> "JobRecord | None":
        """The record in ``folder``, or None if there is none or it cannot be read (then nothing is live)."""
        try:
            data = json.loads((folder / RECORD_NAME).read_text())
            return cls(**data)
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    def save(self, folder: Path) -> None:
        atomic_write_json(folder / RECORD_NAME, dataclasses.asdict(self))

    @classmethod
    def new(cls, run_key: str, launcher: str, job_id: str, num_tasks: int, config_hash: str | None) -> "JobRecord":
        return cls(run_key, launcher, job_id, num_tasks, config_hash, time.time())


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None


def slurm_state(job_id: str) -> str:
    """The job's state from squeue while the controller lists it, else from sacct.

    ``UNKNOWN``: the controller answered and no longer knows the job, and accounting has no record of it
    (a final state). ``UNREACHABLE``: neither could be asked; the job may well be alive.
    """
    sq = _run(["squeue", "--noheader", "--jobs", job_id, "--format", "%T"])
    if sq is not None and sq.returncode == 0 and sq.stdout.strip():
        return sq.stdout.split()[0].upper()
    sa = _run(["sacct", "--noheader", "--parsable2", "--allocations", "--format", "State", "--jobs", job_id])
    if sa is not None and sa.returncode == 0 and sa.stdout.strip():
        # "CANCELLED by 0" → CANCELLED; the last line is the most recent run of a requeued job.
        return sa.stdout.strip().splitlines()[-1].split()[0].upper()
    if sq is not None and (sq.returncode == 0 or "Invalid job id" in sq.stderr):
        return "UNKNOWN"
    return "UNREACHABLE"


# The local controllers' modules: ours (vitpose.launch.local_controller), and submitit's, which ran the
# jobs of earlier versions that an orchestrator may still re-attach to.
_CONTROLLER_MODULES = ("vitpose.launch.local_controller", "submitit.local._local")


def local_job_alive(job_id: str, folder: Path) -> bool:
    """Whether the local executor's controller (its pid is the job id) of this folder is still running."""
    try:
        cmdline = Path(f"/proc/{int(job_id)}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    # A recycled pid belongs to some other program: the controller's command line names the folder.
    args = [a.decode(errors="replace") for a in cmdline]
    return any(m in args for m in _CONTROLLER_MODULES) and str(folder) in args


def job_alive(record: JobRecord, folder: Path) -> bool:
    if record.launcher == "slurm":
        return slurm_state(record.job_id) in MAY_STILL_RUN
    return local_job_alive(record.job_id, folder)


class PidHandle:
    """Stands in for the ``subprocess.Popen`` of a local controller started by another orchestrator,
    so that submitit's LocalJob can poll and cancel it."""

    def __init__(self, pid: int, folder: Path) -> None:
        self.pid, self._folder = pid, folder

    def poll(self) -> int | None:
        # Not os.kill(pid, 0): an exited controller nobody reaped yet (a zombie) would look alive.
        return None if local_job_alive(str(self.pid), self._folder) else 0

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)
