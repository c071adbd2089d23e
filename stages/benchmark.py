"""Inference (and with --train, training-step) throughput and peak memory of a model (Tables 5, 6, 9; Fig. 1).

    python -m stages.benchmark --model vitpose-b --batch 64 --input 256x192 [--iters N] [--train] --json [--out f.json]
    python -m stages.benchmark --config results/S/RUN/config.json --out results/S/RUN/benchmark.json

With --config (or --run RUN, the same file), the run's architecture is measured with its scale's benchmark settings (params.yaml
`scales.<s>.benchmark`: batch, iters, warmup), inference and a training step, as a launcher job.

The record's `throughput` and `train_memory_MB` entries are the metrics.json ones (docs/DEVELOPING.md).
"""
from __future__ import annotations

import argparse
import json
import sys

from stages._cli import add_config_args, launch, load_run_config, run_main
from vitpose.models.cli import add_model_args, config_from_args
from vitpose.utils.errors import UserError
from vitpose.utils.io import atomic_write_json


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.benchmark", description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--batch", type=_positive, default=64)
    parser.add_argument("--iters", type=_positive, default=20, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--train", action="store_true", help="also time a training step (Tables 5, 6 memory)")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda if available)")
    parser.add_argument("--precision", default=None, choices=("bf16", "fp32"),
                        help="default bf16 autocast on GPU, fp32 on CPU (the paper's speeds were fp32)")
    parser.add_argument("--json", action="store_true", help="print the record as one JSON object")
    parser.add_argument("--out", default=None, help="also write the record to this JSON file")
    add_config_args(parser)
    from vitpose.launch import add_launch_args

    add_launch_args(parser)
    args = parser.parse_args(argv)
    if args.run or args.config:
        return run_benchmark(args)
    if args.warmup < 0:
        raise UserError(f"--warmup: expected an integer >= 0, got {args.warmup}")
    import torch

    from vitpose.models.benchmark import benchmark

    if args.device:
        try:
            torch.device(args.device)
        except RuntimeError:
            raise UserError(f"--device: expected cpu, cuda or cuda:N, got {args.device!r}") from None
    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {args.device}: no CUDA device is available here")
    record = benchmark(config_from_args(args), batch=args.batch, iters=args.iters, train=args.train,
                       device=args.device, warmup=args.warmup, precision=args.precision)
    if args.out:
        atomic_write_json(args.out, record)
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            if key != "config":
                print(f"{key:16s} {value}")
    return 0


def run_benchmark(args: argparse.Namespace) -> int:
    """Benchmark a registry run (inference + training step) as a launcher job; write --out."""
    cfg = load_run_config(args)
    settings = cfg.benchmark or {}
    # A heatmap-distillation student's training step runs its teacher's forward too (Table 8 memory).
    teacher = cfg.distill.teacher_model if cfg.distill is not None and cfg.distill.heatmap else None
    kwargs = dict(cfg=cfg.model, batch=settings.get("batch", args.batch), iters=settings.get("iters", args.iters),
                  train=True, warmup=settings.get("warmup", args.warmup), progress=False, teacher=teacher,
                  activation_checkpointing=cfg.train.activation_checkpointing)
    # By name: the launching process (local or SLURM) does not pay for torch; the job does.
    record = launch("vitpose.models.benchmark:benchmark", kwargs, cfg, "benchmark", args)
    record["run"] = cfg.run
    if args.out:
        atomic_write_json(args.out, record)
    print(json.dumps({k: v for k, v in record.items() if k != "config"}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
