"""What runs inside a job: the stage function, its stop flag, and the requeue protocol.

Preemption and time limits reach a job as signals:
- USR2, ``signal_delay_s`` before the time limit (and from ``scancel --signal=USR2``): submitit's handler,
  on rank 0, calls ``StageJob.checkpoint()`` and then requeues the job (``scontrol requeue``; exit code 144
  for the local executor) and exits. ``checkpoint()`` raises the stop flag and waits until the stage
  function has seen it, saved its state and returned, so the requeued job resumes from that state.
- SIGTERM, sent by SLURM before it kills a job it preempts, requeues (``scontrol requeue``) or cancels:
  the flag is raised the same way, the function saves its state, and the task exits without a result;
  SLURM decides whether the job comes back.

The function runs in a worker thread because signal handlers run in the main thread: the handler can then
wait for the function to reach a safe point instead of interrupting it wherever it happens to be.
A function that takes a ``should_stop`` argument gets the flag; it must poll it (every iteration or so),
and on True save its state atomically and return. One that takes none is simply rerun on requeue.
"""
from __future__ import annotations

import importlib
import inspect
import json
import signal
import sys
import threading
import time
from typing import Any, Callable, Mapping

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from vitpose.launch.ddp import export_ddp_env
from vitpose.utils.errors import UserError

SHOULD_STOP = "should_stop"
# Starts the one-line JSON record of a job's error in the traceback submitit sends back (see JobError).
ERROR_MARK = "vitpose-job-error:"


def _log(message: str) -> None:
    print(f"vitpose.launch: {message}", file=sys.stderr, flush=True)


JobFunction = Callable[..., Any] | str  # a callable, or "package.module:function" imported in the job


def _split_name(fn: str) -> tuple[str, str]:
    """("package.module", "function") of a job function's name; ValueError if it is not of that form."""
    module, sep, name = fn.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"job function {fn!r}: expected 'package.module:function'")
    return module, name


def resolve_function(fn: JobFunction) -> Callable[..., Any]:
    """The callable ``fn`` names. A ``"package.module:function"`` string is imported here, in the job:
    the process that submits the job then never imports the stage's heavy modules (torch, timm: seconds
    per job on a small machine)."""
    if not isinstance(fn, str):
        return fn
    module, name = _split_name(fn)
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def accepts_should_stop(fn: JobFunction) -> bool:
    """Whether ``fn`` has a ``should_stop`` parameter the launcher can fill in."""
    try:
        return SHOULD_STOP in inspect.signature(resolve_function(fn)).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


class StopFlag:
    """The ``should_stop`` callable handed to the stage function.

    Under DDP every rank must stop at the same iteration, yet the requeue signal is acted on by rank 0
    alone; so when a process group is up, each call all-reduces the flag (MAX) across ranks. It is then a
    collective: call it at the same points on every rank.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self.reason: str | None = None
        self.observed = False  # the function was told to stop

    def request(self, reason: str) -> None:
        if not self._requested.is_set():
            self.reason = reason
            self._requested.set()

    def __call__(self) -> bool:
        stop = self._requested.is_set()
        # torch is imported here, not at the top: the stage command that launches a job (local processes
        # or SLURM) must not pay for importing it; the job's own function has imported it already.
        import torch
        import torch.distributed as torch_dist

        if torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1:
            device = "cuda" if torch_dist.get_backend() == "nccl" else "cpu"
            flag = torch.tensor([int(stop)], device=device)
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            self.observed = True
        return stop


def type_name(cls: type) -> str:
    """``RuntimeError`` for builtins, else ``module.QualName``, as a traceback's last line writes it."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class JobError(Exception):
    """The exception that ended a stage function, as a record the orchestrator can read back.

    submitit returns a failed job's error as the text of its traceback only, whose last line is
    ``Type: message``: a multi-line message loses all but its last line there, and with it the culprit
    a UserError names first, and whether it was bad input (exit 2) at all. Raised ``from`` the original
    exception, so the job's log keeps the full traceback above this line, whose message is
    ``ERROR_MARK`` and one line of JSON: ``{"type", "user_error", "message"}``.
    """

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(ERROR_MARK + " " + json.dumps(record, ensure_ascii=True))  # ASCII: a single line
        self.record = record

    @classmethod
    def of(cls, exc: BaseException) -> "JobError":
        return cls({"type": type_name(type(exc)), "user_error": isinstance(exc, UserError), "message": str(exc)})

    def __reduce__(self) -> tuple[Any, ...]:
        return JobError, (self.record,)


def parse_error_record(text: str) -> dict[str, Any] | None:
    """The record of the last :class:`JobError` in a traceback's text, or None if it has none."""
    for line in reversed(text.splitlines()):
        at = line.find(ERROR_MARK)  # the first on the line: the message inside the JSON may contain it too
        if at < 0:
            continue
        try:
            record = json.loads(line[at + len(ERROR_MARK):])
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            return {"type": str(record.get("type") or "Exception"), "user_error": bool(record.get("user_error")),
                    "message": record["message"]}
    return None


def _reraise(error: BaseException) -> None:
    """Raise a stage function's exception as a JobError (SystemExit, KeyboardInterrupt: as they are)."""
    if isinstance(error, Exception) and not isinstance(error, JobError):
        raise JobError.of(error) from error
    raise error


def _return_value(value: Any) -> Any:
    """The job of a requeue that follows a completed function: hand its result back at once."""
    return value


class _Worker(threading.Thread):
    """Runs the stage function; keeps its return value or exception for the main thread."""

    def __init__(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
        # daemon: when the main thread exits (requeue), a function that ignores the flag must not keep the
        # process alive.
        super().__init__(name="vitpose-stage", daemon=True)
        self._fn, self._kwargs = fn, kwargs
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._fn(**self._kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self.error = exc

    def join_interruptibly(self) -> None:
        # Short joins keep the main thread returning to the interpreter loop, where signal handlers run.
        while self.is_alive():
            self.join(0.2)


class StageJob(Checkpointable):
    """The callable submitted to submitit: runs ``fn(**kwargs)`` (plus ``should_stop``) in a job.

    Only its definition (``fn``, ``kwargs``) is pickled; the run-time state (worker, flag) lives in the
    process that runs it.
    """

    def __init__(self, fn: JobFunction, kwargs: Mapping[str, Any]) -> None:
        if SHOULD_STOP in kwargs:
            raise ValueError(f"kwargs must not contain {SHOULD_STOP!r}: the launcher provides it")
        if isinstance(fn, str):
            _split_name(fn)  # a malformed name fails at submission, not in the job
        self.fn = fn
        self.kwargs = dict(kwargs)
        self._worker: _Worker | None = None
        self._flag: StopFlag | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"fn": self.fn, "kwargs": self.kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["fn"], state["kwargs"])

    def __call__(self) -> Any:
        job_env = submitit.JobEnvironment()
        dist = export_ddp_env(job_env)
        _log(f"job {job_env.job_id}: rank {dist.rank}/{dist.world_size} on {job_env.hostname}, "
             f"master {dist.master_addr}:{dist.master_port}")
        self._flag = StopFlag()
        kwargs = dict(self.kwargs)
        fn = resolve_function(self.fn)
        if accepts_should_stop(fn):
            kwargs[SHOULD_STOP] = self._flag
            # submitit only logs SIGTERM; we let the function save its state before SLURM's SIGKILL.
            signal.signal(signal.SIGTERM, self._on_sigterm)
        self._worker = _Worker(fn, kwargs)
        self._worker.start()
        self._worker.join_interruptibly()
        # Reached unless the requeue signal's handler ended the process (it exits from inside the join).
        if self._worker.error is not None:
            _reraise(self._worker.error)
        if self._flag.observed:
            # Stopped early, state saved: no result. Rank 0 of a job given the requeue signal never gets
            # here (submitit requeues it from the handler); the other ranks, and every rank of a SIGTERM'd
            # job, leave without a result and the scheduler decides whether the job comes back. Exit status
            # 0: a failing task could make srun (KillOnBadExit) kill rank 0 before it has requeued the job.
            _log(f"stopped on {self._flag.reason or 'the requeue signal of rank 0'}; exiting without a result")
            sys.exit(0)
        return self._worker.result

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        _log("caught SIGTERM: asking the stage function to save its state and stop")
        assert self._flag is not None
        self._flag.request("SIGTERM")

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """Called by submitit on rank 0 on the requeue signal; returns what the requeued job runs."""
        fresh = DelayedSubmission(StageJob(self.fn, self.kwargs))
        if self._worker is None or self._flag is None or not accepts_should_stop(self.fn):
            return fresh  # nothing to save: the requeued job reruns the function
        _log("caught the requeue signal: asking the stage function to save its state and stop")
        self._flag.request("requeue signal")
        start = time.time()
        self._worker.join_interruptibly()
        if self._worker.error is not None:
            _reraise(self._worker.error)  # a failure while stopping fails the job, with its own traceback
        if not self._flag.observed:
            # The function finished before it looked at the flag: keep its result rather than rerun it.
            return DelayedSubmission(_return_value, self._worker.result)
        _log(f"state saved in {time.time() - start:.1f}s; requeueing")
        return fresh
