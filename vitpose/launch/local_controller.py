"""The local launcher's job controller: submitit's, plus a record of how each task process ended.

submitit's local controller (``python -m submitit.local._local FOLDER``) starts the tasks, waits for
them and exits 0, forgetting their exit statuses. A task killed by a signal (SIGKILL from the kernel's
out-of-memory killer, a ``kill -9``) leaves no result and nothing in its log, so the orchestrator could
only say "ended without a result". This controller writes ``<job id>_exits.json`` (the tasks' return
codes, negative for a signal) before it exits, and the orchestrator names the signal.

The executor below is submitit's LocalExecutor with only the controller command changed; the
environment handed to the controller is submitit's protocol, copied from ``submitit.local.local``.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import typing as tp
from pathlib import Path

from submitit.local.local import Controller, LocalExecutor, LocalJob

from vitpose.utils.io import atomic_write_json

CONTROLLER_MODULE = "vitpose.launch.local_controller"


def exits_path(folder: str | os.PathLike, job_id: str) -> Path:
    return Path(folder) / f"{job_id}_exits.json"


def read_exit_codes(folder: str | os.PathLike, job_id: str) -> list[int | None] | None:
    """The tasks' return codes of the job's last attempt (None: still running at the time limit), or None
    when the controller recorded nothing (it was killed itself, or predates this module)."""
    try:
        codes = json.loads(exits_path(folder, job_id).read_text())["exit_codes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return codes if isinstance(codes, list) else None


class RecordingController(Controller):
    def wait(self, freq: int = 24) -> tp.Sequence[tp.Optional[int]]:
        codes = super().wait(freq)
        # Rewritten after every attempt (a requeue starts the tasks again): the last attempt's statuses win.
        atomic_write_json(exits_path(self.folder, self.pid), {"exit_codes": list(codes)})
        return codes


def start_controller(
    folder: Path,
    command: str,
    tasks_per_node: int = 1,
    cuda_devices: str = "",
    timeout_min: float = 5.0,
    signal_delay_s: int = 30,
    stderr_to_stdout: bool = False,
    setup: tp.Sequence[str] = (),
) -> "subprocess.Popen[bytes]":
    """``submitit.local.local.start_controller`` with this module as the controller."""
    env = dict(os.environ)
    env.update(
        SUBMITIT_LOCAL_NTASKS=str(tasks_per_node),
        SUBMITIT_LOCAL_COMMAND=command,
        SUBMITIT_LOCAL_TIMEOUT_S=str(int(60 * timeout_min)),
        SUBMITIT_LOCAL_SIGNAL_DELAY_S=str(int(signal_delay_s)),
        SUBMITIT_LOCAL_NODEID="0",
        SUBMITIT_LOCAL_JOB_NUM_NODES="1",
        SUBMITIT_STDERR_TO_STDOUT="1" if stderr_to_stdout else "",
        SUBMITIT_EXECUTOR="local",
        CUDA_VISIBLE_DEVICES=cuda_devices,
        SUBMITIT_LOCAL_WITH_SHELL="1" if setup else "",
    )
    cmd: tp.Any = [sys.executable, "-m", CONTROLLER_MODULE, str(folder)]
    if setup:
        cmd = " && ".join([*setup, shlex.join(cmd)])
    return subprocess.Popen(cmd, shell=bool(setup), env=env)  # outlives this call; LocalJob polls it


class RecordingLocalExecutor(LocalExecutor):
    """submitit's LocalExecutor whose jobs run under :class:`RecordingController`."""

    def _submit_command(self, command: str) -> LocalJob[tp.Any]:
        ntasks = self.parameters.get("tasks_per_node", 1)
        n_gpus = self.parameters.get("gpus_per_node", 0)
        visible_gpus = self.parameters.get("visible_gpus", ())
        gpus = range(n_gpus) if visible_gpus == () else visible_gpus[:n_gpus]
        process = start_controller(
            folder=self.folder,
            command=command,
            tasks_per_node=ntasks,
            cuda_devices=",".join(str(k) for k in gpus),
            timeout_min=self.parameters.get("timeout_min", 2.0),
            signal_delay_s=self.parameters.get("signal_delay_s", 30),
            stderr_to_stdout=self.parameters.get("stderr_to_stdout", False),
            setup=self.parameters.get("setup", ()),
        )
        return LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=list(range(ntasks)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m {CONTROLLER_MODULE} SUBMITIT_FOLDER")
    RecordingController(Path(sys.argv[1])).run()
