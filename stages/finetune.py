"""Finetune a top-down pose model: `python -m stages.finetune --config results/S/RUN/config.json` (or `--run RUN`).

The training runs as a job of the launcher (`--launcher local|slurm`, docs/SLURM.md); this command
blocks until it ends and exits 1 with the job's error and log path if it failed.

Resumable state goes to the work directory (kept between invocations, not a declared output); the
final weights, in the released ViTPose format, are written atomically to `--out` only when training
has finished. Under `torchrun` every rank runs this command; only rank 0 writes.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stages._cli import add_config_args, launch, load_run_config, remove_outputs_on_error, run_main
from vitpose.utils.errors import UserError


def build_parser(prog: str = "python -m stages.finetune", description: str = __doc__.splitlines()[0],
                 out_file: str = "model.pth") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_config_args(parser)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="resumable training state (default: the config's paths.work_dir, "
                             "work/<scale>/<run>)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"final weights (default: the config's paths, results/<scale>/<run>/{out_file})")
    parser.add_argument("--no-resume", action="store_true", help="ignore saved state and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--in-process", action="store_true",
                        help="train in this process (under torchrun: every rank runs the command) "
                             "instead of as a launcher job")
    from vitpose.launch import add_launch_args

    add_launch_args(parser)
    return parser


# The training stages: what each writes (RUN_FILES keys of its weights and of its training curve) and
# what kind of run it trains, in words.
STAGES = {
    "finetune": ("checkpoint", "curve", "a finetuning"),
    "pretrain": ("mae", "mae_curve", "an MAE pre-training"),
    "token": ("token", "token_curve", "a knowledge-token training"),
}


def run_stage(cfg) -> str:
    """The training stage a run config belongs to."""
    if cfg.pretraining is not None:
        return "pretrain"
    if cfg.distill is not None and cfg.distill.job == "token":
        return "token"
    return "finetune"


def main(argv: Sequence[str] | None = None, stage: str = "finetune",
         parser: argparse.ArgumentParser | None = None) -> int:
    """Train the run of `--config` as a `stage` job: "finetune" (this command; a distilled student
    too), "pretrain" (stages.pretrain: the MAE objective, writing the run's `mae` file) or "token"
    (stages.token: knowledge-token training, writing the run's `token` file). Same loop for all."""
    args = (parser or build_parser()).parse_args(argv)
    cfg = load_run_config(args)
    own = run_stage(cfg)
    if own != stage:
        raise UserError(f"{args.config or args.run}: run {cfg.run} is {STAGES[own][2]} run; "
                        f"train it with `python -m stages.{own}`")
    work_dir = args.work_dir or cfg.paths.resolve("work_dir")
    out = args.out or cfg.paths.resolve(STAGES[stage][0])
    # The curve goes beside the weights (a declared output of the job, like them).
    curve = out.parent / Path(cfg.paths.file(STAGES[stage][1])).name

    kwargs = dict(cfg=cfg, work_dir=work_dir, out_checkpoint=out, resume=not args.no_resume,
                  progress=not args.no_progress, curve=curve)
    if not args.in_process:
        with remove_outputs_on_error([out, curve]):
            # By name: this process only waits for the job and never imports torch.
            summary = launch("vitpose.engine.trainer:train", kwargs, cfg, stage, args)
        print(json.dumps(summary, indent=2))
        return 0
    from vitpose.engine.distributed import cleanup, is_main_process
    from vitpose.engine.trainer import train

    try:
        with remove_outputs_on_error([out, curve]):
            summary = train(**kwargs)
        if is_main_process():
            print(json.dumps(summary, indent=2))
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
