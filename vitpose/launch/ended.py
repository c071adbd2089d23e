"""How a job ended, in words: the error it raised, or how its task died when it left no result.

The orchestrator learns a job's fate from submitit's result pickle (the traceback text of a failure)
and, when there is none, from the local controller's record of exit codes or from SLURM's job state.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
import signal

from vitpose.launch.config import LaunchConfig
from vitpose.launch.job import parse_error_record
from vitpose.utils.errors import UserError

_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_RERUN = ("To retry, rerun the same command: a new job is submitted, and a resumable stage (finetune) "
          "continues from the state saved in its work directory.")
_LOCAL_REQUEUE_STATUS = 144  # submitit's local executor: the task asked to be requeued


@dataclasses.dataclass(frozen=True)
class JobErrorInfo:
    """What the job raised: ``type`` (``RuntimeError``, ``vitpose.utils.errors.DataError``), its whole
    ``message``, and whether it is bad input (a UserError)."""

    type: str
    message: str
    user_error: bool


def is_user_error_type(name: str) -> bool:
    """Whether the exception type ``module.ClassName`` is a UserError of this project (bad input).

    Only this project's modules are imported: a type name read from a log must not import anything else.
    """
    module, _, cls = name.strip().rpartition(".")
    if not module.startswith(("vitpose.", "stages.", "workflow.")) and module not in ("vitpose", "stages"):
        return False
    try:
        obj = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, UserError)


def parse_job_error(text: str) -> JobErrorInfo:
    """The job's error from the traceback text submitit returns for a failed task.

    Prefers the record a StageJob attaches (type, full message, user error or not); else reads the last
    exception of the traceback, all its lines, not only the last one.
    """
    record = parse_error_record(text)
    if record is not None:
        return JobErrorInfo(record["type"], record["message"], record["user_error"])
    lines = text.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    i = 0
    if starts:  # skip the frames (indented) of the last traceback: the exception follows them
        i = starts[-1] + 1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
            i += 1
    body = lines[i:] or ["unknown error"]
    head, sep, first = body[0].partition(": ")
    if _TYPE.fullmatch(head.strip()) and (sep or len(body) == 1):
        name = head.strip()
        return JobErrorInfo(name, "\n".join([first, *body[1:]]).strip("\n"), is_user_error_type(name))
    return JobErrorInfo("Exception", "\n".join(body), False)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


_SLURM_ENDS = {
    "CANCELLED": ("was cancelled (scancel, or an administrator)", ""),
    "TIMEOUT": ("hit its time limit (timeout_min={timeout_min})",
                "Raise timeout_min (e.g. --launch-set timeout_min=N) or max_requeue (now {max_requeue}). "),
    "OUT_OF_MEMORY": ("ran out of memory",
                      "Request more memory (mem_gb, e.g. --launch-set mem_gb=N) or lower the batch size. "),
    "NODE_FAIL": ("lost its node (node failure)", ""),
    "PREEMPTED": ("was preempted and not requeued", ""),
    "BOOT_FAIL": ("could not start on its node (boot failure)", ""),
    "DEADLINE": ("passed its deadline", ""),
    "FAILED": ("failed without a Python error (a crash, or a signal)", ""),
    "COMPLETED": ("completed without writing a result (a task stopped early)", ""),
    "UNKNOWN": ("is no longer known to SLURM (neither squeue nor sacct lists it)", ""),
}


def describe_end(who: str, task: int, cfg: LaunchConfig, state: str, exit_code: int | None | str) -> tuple[str, str]:
    """(what happened, what to do) for task ``task`` of a job that left no result.

    ``exit_code``: the local task's return code (negative: killed by that signal; None: still running at
    the time limit; ``"unknown"``: not recorded). SLURM jobs are described by their final ``state``.
    """
    fmt = {"timeout_min": cfg.timeout_min, "max_requeue": cfg.max_requeue}
    if cfg.launcher == "slurm":
        what, advice = _SLURM_ENDS.get(state, (f"ended in state {state}", ""))
        return (f"{who} {what.format(**fmt)}: it ended ({state}) without a result in task {task}",
                advice.format(**fmt) + _RERUN)
    if isinstance(exit_code, int) and exit_code < 0:
        name = _signal_name(-exit_code)
        advice = ""
        if -exit_code == signal.SIGKILL:
            advice = ("SIGKILL is also how the kernel's out-of-memory killer ends a process (see `dmesg`); "
                      "if memory ran out, lower the batch size or data.num_workers. ")
        return f"{who} ended without a result: task {task} was killed by {name} (signal {-exit_code})", advice + _RERUN
    if exit_code is None:
        return (f"{who} ended without a result: task {task} was still running at the time limit "
                f"(timeout_min={cfg.timeout_min}) and was stopped",
                "Raise timeout_min (e.g. --launch-set timeout_min=N). " + _RERUN)
    if exit_code == _LOCAL_REQUEUE_STATUS:
        return (f"{who} ended without a result: task {task} asked to be requeued more often than "
                f"max_requeue={cfg.max_requeue} allows", "Raise max_requeue or timeout_min. " + _RERUN)
    if isinstance(exit_code, int):
        return f"{who} ended without a result: task {task} exited with status {exit_code}", _RERUN
    return f"{who} ended without a result in task {task} (how it ended was not recorded)", _RERUN
