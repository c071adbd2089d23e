"""Shared plumbing for the stage commands: argument helpers, run-config loading, error handling.

Every stage's `main(argv)` is wrapped by `run_main`, which turns a UserError into `error: <message>`
on stderr and exit status 2 (no traceback), and removes the outputs the failed call had started.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from vitpose.utils.errors import UserError

EXIT_JOB_FAILED = 1
EXIT_USER_ERROR = 2


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Which run: `--config results/<scale>/<run>/config.json` (what the DAG passes), or `--run ID
    [--scale S]`, shorthand for that same file. The file is the run's one resolved configuration."""
    group = parser.add_argument_group("run (one of --config or --run)")
    group.add_argument("--config", type=Path, default=None,
                       help="the run's resolved config.json (written by the DAG's `config` job), or a "
                            "hand-written run config (.json or .yaml)")
    group.add_argument("--run", help="run id: reads results/<scale>/<run>/config.json")
    group.add_argument("--scale", help="scale of --run (default: params.yaml's `scale`)")


def config_path_of_run(run: str, scale: str | None) -> Path:
    """`results/<scale>/<run>/config.json` of a registry run (the scale defaults to params.yaml's)."""
    from vitpose.config import RunPaths, resolve_path

    if scale is None:
        from workflow.registry import PARAMS, load_registry

        scale = load_registry(PARAMS).scale
    return resolve_path(RunPaths.for_run(scale, run).file("config"))


def _explain_missing_config(run: str, scale: str | None, config: Path) -> None:
    """Raise the UserError for `--run RUN` without its config.json: unknown, unavailable or not resolved."""
    from workflow.registry import PARAMS, load_registry

    registry = load_registry(PARAMS, scale)
    known = registry.get(run)  # an unknown id fails here, naming the command that lists the runs
    if known.missing:
        raise UserError(f"run {run} ({registry.scale}) cannot be produced: {known.missing}")
    rel = config.relative_to(Path.cwd()) if config.is_relative_to(Path.cwd()) else config
    raise UserError(
        f"{rel}: the resolved configuration of run {run} does not exist yet; write it with "
        f"`snakemake {rel}` (or `python -m workflow.registry resolve {run} --scale {registry.scale} "
        f"--out {rel}`)")


def load_run_config(args: argparse.Namespace):
    """The RunConfig named by the parsed arguments (see `add_config_args`).

    A run that needs a capability the code base does not have yet fails here, at once, naming it.
    """
    from vitpose.config import load_run_config_file

    run, config = getattr(args, "run", None), getattr(args, "config", None)
    if (run is None) == (config is None):
        raise UserError("give exactly one of --config results/<scale>/<run>/config.json or --run ID")
    if config is None:
        config = config_path_of_run(run, args.scale)
        if not config.is_file():
            _explain_missing_config(run, args.scale, config)
    cfg = load_run_config_file(config)
    if cfg.unavailable:
        raise UserError(f"run {cfg.run} ({cfg.scale}) cannot be produced: {cfg.unavailable}")
    return cfg


@contextlib.contextmanager
def remove_outputs_on_error(paths: Sequence[str | os.PathLike]) -> Iterator[None]:
    """If the block fails, delete the listed files it created or rewrote (none is left half-done)."""
    before = {}
    for p in map(Path, paths):
        before[p] = p.stat().st_mtime_ns if p.exists() else None
    try:
        yield
    except BaseException:
        for p, mtime in before.items():
            if p.is_file() and (mtime is None or p.stat().st_mtime_ns != mtime):
                with contextlib.suppress(OSError):
                    p.unlink()
        raise


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call `main(argv)`; a UserError becomes `error: ...` on stderr and return code 2.

    A failed job (JobFailed) also prints `error: ...`, its first line the culprit (for bad input found in
    the job: the file or key the error names, as in-process), then the rest of the error and the job's
    log path; return code 2 when the job raised a UserError, 1 otherwise.
    """
    from vitpose.launch.runner import JobFailed

    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except JobFailed as exc:  # the job's error and the path of its log are in the message
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR if exc.user_error else EXIT_JOB_FAILED
    return 0 if code is None else int(code)


def _is_user_error(error_line: str) -> bool:
    """Whether a job's error line (`pkg.module.ClassName: message`) is bad input (a UserError).

    Bad input stays exit 2 whether it is found before the job starts or inside it.
    """
    from vitpose.launch.ended import is_user_error_type

    return is_user_error_type(error_line.split(":", 1)[0])


def launch(fn: Callable, kwargs: dict, cfg, stage: str, args: argparse.Namespace):
    """Run `fn(**kwargs)` as this stage's job (local processes or SLURM, see docs/SLURM.md); block.

    Returns rank 0's result; a failed job raises JobFailed (exit 1 through `run_main`).
    """
    from vitpose.launch import launch_config_from_args, run_job

    launch_cfg = launch_config_from_args(args, stage)
    return run_job(fn, kwargs, f"{cfg.scale}/{cfg.run}/{stage}", launch_cfg,
                   config_hash=cfg.hash, progress=False)
