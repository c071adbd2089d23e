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
    """Which run: `--run ID [--scale S] [--params params.yaml]` (the registry) or `--config FILE`."""
    group = parser.add_argument_group("run (one of --run or --config)")
    group.add_argument("--run", help="run id from the registry (python -m workflow.registry list)")
    group.add_argument("--scale", help="scale of --run (default: params.yaml's `scale`)")
    group.add_argument("--params", type=Path, default=None, help="params.yaml (default: the repository's)")
    group.add_argument("--config", type=Path, default=None, help="a resolved run config (.json or .yaml)")


def load_run_config(args: argparse.Namespace):
    """The RunConfig named by the parsed arguments: a registry run id, or a config file.

    A run that needs a capability the code base does not have yet fails here, at once, naming it.
    """
    from vitpose.config import RunConfig, load_run_config_file

    run, config = getattr(args, "run", None), getattr(args, "config", None)
    if (run is None) == (config is None):
        raise UserError("give exactly one of --run ID (with --scale) or --config FILE")
    if config is not None:
        return load_run_config_file(config)
    from workflow.registry import PARAMS, load_registry

    params = args.params or PARAMS
    registry = load_registry(params, args.scale)
    cfg = registry.run_config(run)
    if cfg.get("unavailable"):
        raise UserError(f"run {run} ({registry.scale}) cannot be produced: {cfg['unavailable']}")
    try:
        return RunConfig.from_dict(cfg)
    except UserError as exc:
        raise UserError(f"{params}: run {run}: {exc}") from None


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
    """Call `main(argv)`; a UserError becomes `error: ...` on stderr and return code 2."""
    from vitpose.launch.runner import JobFailed

    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except JobFailed as exc:  # the job's error and the path of its log are in the message
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR if _is_user_error(exc.error) else EXIT_JOB_FAILED
    return 0 if code is None else int(code)


def _is_user_error(error_line: str) -> bool:
    """Whether a job's last traceback line (`pkg.module.ClassName: message`) is bad input (a UserError).

    Bad input stays exit 2 whether it is found before the job starts or inside it.
    """
    import importlib

    name = error_line.split(":", 1)[0].strip()
    module, _, cls = name.rpartition(".")
    if not module.startswith(("vitpose.", "stages.", "workflow.")):
        return False
    try:
        obj = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, UserError)


def launch(fn: Callable, kwargs: dict, cfg, stage: str, args: argparse.Namespace):
    """Run `fn(**kwargs)` as this stage's job (local processes or SLURM, see docs/SLURM.md); block.

    Returns rank 0's result; a failed job raises JobFailed (exit 1 through `run_main`).
    """
    from vitpose.config import config_hash
    from vitpose.launch import launch_config_from_args, run_job

    launch_cfg = launch_config_from_args(args, stage)
    return run_job(fn, kwargs, f"{cfg.scale}/{cfg.run}/{stage}", launch_cfg,
                   config_hash=config_hash(cfg.to_dict()), progress=False)
