"""`run_job`: run one stage function as a job (local processes or SLURM) and block until it ends.

The orchestrator side of the launcher: it submits the job through submitit (or re-attaches to the job a
previous orchestrator submitted for the same run), waits, and returns rank 0's result or raises
`JobFailed` with the job's error and the path of its log.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import submitit
from submitit.core.utils import FailedJobError, pickle_load
from submitit.local.local import LocalJob
from tqdm import tqdm

from vitpose.launch.config import LaunchConfig
from vitpose.launch.ended import describe_end, parse_job_error
from vitpose.launch.job import SHOULD_STOP, JobFunction, StageJob
from vitpose.launch.local_controller import RecordingLocalExecutor, read_exit_codes
from vitpose.launch.record import MAY_STILL_RUN, JobRecord, PidHandle, job_alive, slurm_state
from vitpose.utils.errors import ConfigError, UserError

_RUN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=@-]*(/[A-Za-z0-9][A-Za-z0-9._+=@-]*)*")
_RESULT_GRACE_S = 15.0  # a shared file system may show the result pickle a little after the job ends
_TRACE_LINES = 30


class JobFailed(Exception):
    """The job ran and failed, or ended without a result. The message gives its error and its log.

    Its first line is the culprit: for bad input found inside the job (a UserError) the error's own first
    line, which names the file or key, exactly as when the stage runs in-process; otherwise the job, the
    task and the error (``RuntimeError: ...``) or how the task ended (``killed by SIGKILL (signal 9)``).

    Attributes: ``error`` (``Type: first line`` of the error, or how the task ended), ``error_type``
    (``RuntimeError``, ``vitpose.utils.errors.DataError``; None when the task left no error),
    ``error_message`` (the error's whole message, or None), ``user_error`` (the job raised a UserError:
    bad input, exit status 2), ``state`` (the scheduler's final state), ``job_id``, ``run_key``, ``log_path``.
    """

    def __init__(self, message: str, *, job_id: str, run_key: str, log_path: Path, error: str,
                 error_type: str | None = None, error_message: str | None = None, user_error: bool = False,
                 state: str | None = None) -> None:
        super().__init__(message)
        self.job_id, self.run_key, self.log_path, self.error = job_id, run_key, log_path, error
        self.error_type, self.error_message, self.user_error = error_type, error_message, user_error
        self.state = state


class JobConflict(UserError):
    """Another job or orchestrator already works on this run."""


class SubmissionError(UserError):
    """The scheduler refused the job (bad partition, account, time limit, ...)."""


def _log(message: str) -> None:
    print(f"vitpose.launch: {message}", file=sys.stderr, flush=True)


def run_folder(cfg: LaunchConfig, run_key: str) -> Path:
    """The folder of submitit's files (logs, pickles, job record) for ``run_key``."""
    if not _RUN_KEY.fullmatch(run_key) or ".." in run_key.split("/"):
        raise ConfigError(
            f"run key {run_key!r}: expected path-like words of letters, digits and ._+=@- separated by '/'"
        )
    return Path(cfg.folder).resolve() / run_key


@contextlib.contextmanager
def _orchestrator_lock(folder: Path, run_key: str) -> Iterator[None]:
    """One orchestrator per run at a time; the lock dies with its process, so a crash leaves none behind."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "orchestrator.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the jobs we start (O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise JobConflict(
                f"run {run_key!r} is already being launched by process {holder} (lock {path}); "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _make_executor(cfg: LaunchConfig, folder: Path, run_key: str) -> submitit.Executor:
    params: dict[str, Any] = dict(
        name=f"vitpose:{run_key}",
        timeout_min=cfg.timeout_min,
        nodes=cfg.nodes,
        tasks_per_node=cfg.tasks_per_node,
    )
    if cfg.launcher == "local":
        # submitit's LocalExecutor (what AutoExecutor picks for "local") with a controller that records how
        # each task ended, so that a killed task is reported with its signal.
        local = RecordingLocalExecutor(folder=folder, max_num_timeout=cfg.max_requeue)
        params["gpus_per_node"] = cfg.gpus_per_node  # 0 hides the GPUs from the job, as on a CPU node
        if cfg.setup:
            params["setup"] = list(cfg.setup)
        local.update_parameters(**params)
        return local
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cfg.launcher, slurm_max_num_timeout=cfg.max_requeue)
    except RuntimeError as exc:  # SlurmExecutor: no srun on PATH
        raise ConfigError(f"launcher {cfg.launcher!r} is not usable on this machine: {exc}") from None
    if cfg.gpus_per_node:  # --gpus-per-node=0 is rejected where no GPU gres is configured
        params["gpus_per_node"] = cfg.gpus_per_node
    if cfg.cpus_per_task is not None:
        params["cpus_per_task"] = cfg.cpus_per_task
    if cfg.mem_gb is not None:
        params["mem_gb"] = cfg.mem_gb
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(cfg, key) is not None:
            params[f"slurm_{key}"] = getattr(cfg, key)
    params["slurm_signal_delay_s"] = cfg.signal_delay_s
    if cfg.setup:
        params["slurm_setup"] = list(cfg.setup)
    # --requeue: sites with JobRequeue=0 would otherwise refuse both our `scontrol requeue` and their own
    # requeue-on-preemption.
    params["slurm_additional_parameters"] = {"requeue": True, **cfg.slurm_extra}
    try:
        executor.update_parameters(**params)
    except (ValueError, NameError) as exc:
        raise ConfigError(f"launch config: submitit rejected the SLURM parameters: {exc}") from None
    return executor


def _check_usable(cfg: LaunchConfig) -> None:
    """ConfigError when the launcher's tools are not on this machine (SLURM: sbatch, srun)."""
    if cfg.launcher == "slurm":
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise ConfigError(f"launcher 'slurm' is not usable on this machine: {' and '.join(missing)} not on "
                              "PATH; run where SLURM is installed, or use --launcher local")


def _attach(folder: Path, run_key: str, cfg: LaunchConfig, config_hash: str | None) -> submitit.Job | None:
    """The job a previous orchestrator submitted for this run, if it is still alive."""
    record = JobRecord.load(folder)
    if record is None or not job_alive(record, folder):
        return None
    if record.launcher != cfg.launcher or (config_hash is not None and record.config_hash != config_hash):
        cancel = f"scancel {record.job_id}" if record.launcher == "slurm" else f"kill {record.job_id}"
        raise JobConflict(
            f"run {run_key!r} already has a live {record.launcher} job {record.job_id} (config hash "
            f"{record.config_hash}); this launch asks for a {cfg.launcher} job with config hash {config_hash}. "
            f"Wait for it to end or cancel it ({cancel})"
        )
    tasks = list(range(record.num_tasks))
    _log(f"re-attaching to {record.launcher} job {record.job_id} of run {run_key!r} (no new submission)")
    if record.launcher == "slurm":
        return submitit.SlurmJob(folder=folder, job_id=record.job_id, tasks=tasks)
    return LocalJob(folder=folder, job_id=record.job_id, tasks=tasks,
                    process=PidHandle(int(record.job_id), folder))  # type: ignore[arg-type]


def _submit(
    fn: JobFunction,
    kwargs: Mapping[str, Any],
    folder: Path,
    run_key: str,
    cfg: LaunchConfig,
    config_hash: str | None,
) -> submitit.Job:
    # Results of finished jobs of this run are consumed; a new job may reuse an old id (a reset test
    # cluster, a recycled pid) and must not be taken for done by its predecessor's result.
    for stale in folder.glob("*_result.pkl"):
        stale.unlink()
    executor = _make_executor(cfg, folder, run_key)
    try:
        job = executor.submit(StageJob(fn, kwargs))
    except FailedJobError as exc:  # sbatch said no
        raise SubmissionError(f"{cfg.launcher} refused the job of run {run_key!r}: {exc}") from None
    JobRecord.new(run_key, cfg.launcher, job.job_id, cfg.num_tasks, config_hash).save(folder)
    _log(f"submitted {cfg.launcher} job {job.job_id} for run {run_key!r} "
         f"({cfg.num_tasks} task(s)); logs in {folder}")
    return job


def _state(job: submitit.Job, launcher: str) -> str:
    if launcher == "slurm":
        return slurm_state(job.job_id)
    return job.get_info()["jobState"]  # LocalJob: RUNNING while its controller runs


def _tasks(job: submitit.Job) -> list[submitit.Job]:
    return [job.task(k) for k in range(job.num_tasks)]


def _wait(job: submitit.Job, cfg: LaunchConfig, run_key: str, progress: bool) -> str:
    """Block until every task wrote its result or the scheduler says the job is over; return its state."""
    last_check = float("-inf")
    state = "SUBMITTED"
    bar = tqdm(desc=f"{cfg.launcher} job {job.job_id} ({run_key})", bar_format="{desc}: {postfix} [{elapsed}]",
               disable=not progress, file=sys.stderr)
    with bar:
        while not all(t.paths.result_pickle.exists() for t in _tasks(job)):
            poll_s = cfg.poll_s if cfg.launcher == "slurm" else 1.0  # local: no scheduler to spare
            if time.monotonic() - last_check >= poll_s:
                last_check = time.monotonic()
                state = _state(job, cfg.launcher)
                bar.set_postfix_str(state)
                if state not in MAY_STILL_RUN:  # local jobs: RUNNING until their controller exits
                    break
            # A local job's result file is seen within 0.2 s: short jobs (a benchmark, an evaluation)
            # do not wait out a full second each; SLURM jobs are minutes long.
            time.sleep(1.0 if cfg.launcher == "slurm" else 0.2)
        else:
            state = "COMPLETED"
    return state


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _collect(job: submitit.Job, cfg: LaunchConfig, run_key: str, state: str) -> Any:
    """Rank 0's result, or JobFailed naming the first task that failed (or left no result)."""
    # Only a job that ran to its end writes results; a cancelled, timed-out or killed one has none to wait for.
    grace = _RESULT_GRACE_S if cfg.launcher == "slurm" and state in ("COMPLETED", "FAILED") else 0.0
    deadline = time.monotonic() + grace
    outcomes: list[tuple[str, Any]] = []
    for task in _tasks(job):
        path = task.paths.result_pickle
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(1.0)
        outcomes.append(pickle_load(path) if path.exists() else ("missing", None))
    if all(kind == "success" for kind, _ in outcomes):
        return outcomes[0][1]
    exit_codes = read_exit_codes(job.paths.folder, job.job_id) if cfg.launcher == "local" else None
    k = _culprit_task(outcomes, exit_codes)
    kind, payload = outcomes[k]
    log_path = job.task(k).paths.stderr
    who = f"{cfg.launcher} job {job.job_id} of run {run_key!r}"
    if kind == "error":
        err = parse_job_error(payload if isinstance(payload, str) else str(payload))
        first, _, rest = err.message.partition("\n")
        error = f"{err.type}: {first}" if first else err.type
        if err.user_error and first:
            # Bad input: the culprit the error names first leads, as when the stage runs in-process; its
            # traceback (in the log) says nothing more to the user.
            message = f"{err.message}\n(raised as {err.type} in task {k} of {who})\nlog: {log_path}"
        else:
            lines = [f"{who} failed in task {k}: {error}", rest, f"log: {log_path}", _tail(payload, _TRACE_LINES)]
            message = "\n".join(line for line in lines if line)
        raise JobFailed(message.rstrip(), job_id=job.job_id, run_key=run_key, log_path=log_path, error=error,
                        error_type=err.type, error_message=err.message, user_error=err.user_error, state=state)
    code = exit_codes[k] if exit_codes is not None and k < len(exit_codes) else "unknown"
    what, advice = describe_end(who, k, cfg, state, code)
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    message = f"{what}\n{advice}\nlog: {log_path}\n{_tail(log, _TRACE_LINES)}"
    raise JobFailed(message.rstrip(), job_id=job.job_id, run_key=run_key, log_path=log_path,
                    error=what[len(who):].strip(), state=state)


def _culprit_task(outcomes: list[tuple[str, Any]], exit_codes: list[Any] | None) -> int:
    """The task to report: the first that raised, else the first that died abnormally, else the first
    without a result (the others were most likely stopped because of it)."""
    failed = [k for k, (kind, _) in enumerate(outcomes) if kind == "error"]
    if failed:
        return failed[0]
    missing = [k for k, (kind, _) in enumerate(outcomes) if kind != "success"]
    if exit_codes is not None:
        abnormal = [k for k in missing if k < len(exit_codes) and exit_codes[k] not in (0, None)]
        if abnormal:
            return abnormal[0]
    return missing[0]


def run_job(
    fn: JobFunction,
    kwargs: Mapping[str, Any],
    run_key: str,
    cfg: LaunchConfig,
    *,
    config_hash: str | None = None,
    progress: bool = True,
) -> Any:
    """Run ``fn(**kwargs)`` as a job of ``cfg.num_tasks`` processes and return rank 0's result.

    fn: a picklable (module-level) callable, or its name ``"package.module:function"``, imported only in
        the job (the submitting process then needs none of the stage's imports). If it has a
        ``should_stop`` parameter it receives a callable that turns True when the job is about to be preempted or to hit its time limit; it must then
        save its state atomically and return, and the requeued job calls it again to resume.
    run_key: names the run (``smoke/ft-vitpose-b``): its folder under ``cfg.folder`` and its job record.
        While a job of this run is pending or running, a new call waits on it instead of submitting.
    config_hash: recorded with the job; re-attaching to a live job with a different hash raises
        `JobConflict` instead of returning a result computed for another configuration.

    Raises `JobFailed` (the job's error and log path) when the job fails or ends without a result,
    `JobConflict` when the run is busy elsewhere, `SubmissionError` when the scheduler refuses the job.
    """
    if SHOULD_STOP in kwargs:
        raise TypeError(f"kwargs must not contain {SHOULD_STOP!r}: the launcher provides it")
    folder = run_folder(cfg, run_key)
    _check_usable(cfg)  # before the run's folder is created: a refused launch leaves nothing behind
    with _orchestrator_lock(folder, run_key):
        job = _attach(folder, run_key, cfg, config_hash) or _submit(fn, kwargs, folder, run_key, cfg, config_hash)
        state = _wait(job, cfg, run_key, progress)
        return _collect(job, cfg, run_key, state)
