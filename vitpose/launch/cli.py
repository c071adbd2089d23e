"""Command-line glue for stage commands: launch options and how a failed job ends the command."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from vitpose.launch.config import LAUNCHERS, LaunchConfig, load_launch_config, parse_override
from vitpose.launch.runner import JobFailed
from vitpose.utils.errors import UserError

EXIT_JOB_FAILED = 1
EXIT_USER_ERROR = 2


def add_launch_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher``, ``--launch-config`` and ``--launch-set KEY=VALUE`` (see docs/SLURM.md)."""
    group = parser.add_argument_group("launch (where the job runs; resources, not science)")
    group.add_argument("--launcher", choices=LAUNCHERS,
                       help="local processes or a SLURM job (default: $VITPOSE_LAUNCH, the launch config, local)")
    group.add_argument("--launch-config", metavar="YAML",
                       help="site launch config (default: $VITPOSE_LAUNCH_CONFIG)")
    group.add_argument("--launch-set", metavar="KEY=VALUE", action="append", default=[],
                       help="override one launch config key, e.g. gpus_per_node=8 (repeatable)")


def launch_config_from_args(args: argparse.Namespace, stage: str | None = None) -> LaunchConfig:
    """The launch config of ``stage``: the file's keys and stage section, then env, then the command line."""
    overrides = dict(parse_override(item) for item in args.launch_set)
    if args.launcher:
        overrides["launcher"] = args.launcher
    return load_launch_config(args.launch_config, stage=stage, overrides=overrides)


def guarded_main(main: Callable[[], int | None]) -> int:
    """Run a stage's ``main``; a failed job or bad input ends it with ``error: ...`` instead of a traceback.

    Exit codes: 1 when the job failed (its error and log path are in the message), 2 for bad input,
    whether found before the job or inside it (the job raised a UserError).
    """
    try:
        return main() or 0
    except JobFailed as exc:
        print(f"error: {exc}", file=sys.stderr)  # its first line is the culprit
        return EXIT_USER_ERROR if exc.user_error else EXIT_JOB_FAILED
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
