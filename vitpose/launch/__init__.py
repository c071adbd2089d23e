"""Launching GPU stages as jobs: local processes or SLURM through submitit; requeue; DDP environment.

    from vitpose.launch import load_launch_config, run_job
    cfg = load_launch_config(stage="finetune")            # $VITPOSE_LAUNCH_CONFIG, $VITPOSE_LAUNCH
    result = run_job(train, dict(cfg=run_cfg, work_dir=wd, out_checkpoint=out), "smoke/ft-b", cfg)

See docs/SLURM.md.

The names below are imported on first use (PEP 562): the local job controller runs as
``python -m vitpose.launch.local_controller`` for the whole job, and importing this package must not
load torch into it (nor import that module before ``runpy`` runs it as ``__main__``).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DistEnv": "vitpose.launch.ddp",
    "JobConflict": "vitpose.launch.runner",
    "JobFailed": "vitpose.launch.runner",
    "LaunchConfig": "vitpose.launch.config",
    "StopFlag": "vitpose.launch.job",
    "SubmissionError": "vitpose.launch.runner",
    "add_launch_args": "vitpose.launch.cli",
    "default_backend": "vitpose.launch.ddp",
    "export_ddp_env": "vitpose.launch.ddp",
    "guarded_main": "vitpose.launch.cli",
    "launch_config_from_args": "vitpose.launch.cli",
    "load_launch_config": "vitpose.launch.config",
    "run_folder": "vitpose.launch.runner",
    "run_job": "vitpose.launch.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        try:  # a submodule (vitpose.launch.runner) used as an attribute, as the eager package allowed
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
