"""Throughput and peak memory of ViTPose-B/L/H at batch 64: inference, and with --train a training step.

Paper Table 9 / Fig. 1 speeds: single A100, batch 64, fp32 in the released script: B 944, L 411,
H 241 images/s (pass --precision fp32 to match that protocol). Each model runs in its own process so
that its peak memory is measured from a clean start.

    python benchmarks/throughput.py [--models vitpose-b,vitpose-l,vitpose-h] [--batch 64] [--iters 50] [--train]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vitpose-b,vitpose-l,vitpose-h")
    parser.add_argument("--batch", default="64")
    parser.add_argument("--iters", default="50")
    parser.add_argument("--warmup", default="10")
    parser.add_argument("--input", default="256x192")
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None, choices=("bf16", "fp32"), help="default: bf16 on GPU")
    parser.add_argument("--depth", default=None, help="override every model's depth (smoke runs)")
    args = parser.parse_args(argv)
    status = 0
    for model in args.models.split(","):
        cmd = [sys.executable, "-m", "stages.benchmark", "--model", model, "--batch", args.batch,
               "--iters", args.iters, "--warmup", args.warmup, "--input", args.input, "--json"]
        cmd += ["--train"] if args.train else []
        cmd += ["--device", args.device] if args.device else []
        cmd += ["--precision", args.precision] if args.precision else []
        cmd += ["--depth", args.depth] if args.depth else []
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{model}: failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})")
            status = 1
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        line = f"{model:10s} device={r['device']} batch={r['batch']} precision={r['precision']}"
        for phase in ("inference", "train"):
            if r[phase] is not None:
                memory = r[phase]["peak_memory_MB"]
                line += (f" | {phase}: images/s={r[phase]['images_per_s']:.1f} peak_memory="
                         f"{'n/a' if memory is None else f'{memory:.0f} MiB'}")
        print(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
