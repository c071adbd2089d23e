"""Launching GPU stages as jobs: local processes or SLURM through submitit; requeue; DDP environment.

    from vitpose.launch import load_launch_config, run_job
    cfg = load_launch_config(stage="finetune")            # $VITPOSE_LAUNCH_CONFIG, $VITPOSE_LAUNCH
    result = run_job(train, dict(cfg=run_cfg, work_dir=wd, out_checkpoint=out), "smoke/ft-b", cfg)

See docs/SLURM.md.
"""
from vitpose.launch.cli import add_launch_args, guarded_main, launch_config_from_args
from vitpose.launch.config import LaunchConfig, load_launch_config
from vitpose.launch.ddp import DistEnv, default_backend, export_ddp_env
from vitpose.launch.job import StopFlag
from vitpose.launch.runner import JobConflict, JobFailed, SubmissionError, run_folder, run_job

__all__ = [
    "DistEnv",
    "JobConflict",
    "JobFailed",
    "LaunchConfig",
    "StopFlag",
    "SubmissionError",
    "add_launch_args",
    "default_backend",
    "export_ddp_env",
    "guarded_main",
    "launch_config_from_args",
    "load_launch_config",
    "run_folder",
    "run_job",
]
