"""Evaluate a checkpoint and write the run's metrics.json: `python -m stages.evaluate --config results/S/RUN/config.json`.

(`--run RUN` reads the same file; `--checkpoint`, `--out-dir`, `--benchmark` override the config's paths).
The inference runs as a launcher job (`--launcher local|slurm`); metrics.json is written here.

`--released`: the checkpoint is one of the authors' released files (a released run, params.yaml
`released`): the model is built from the file itself (vitpose.models.architecture; a multi-task file's
other decoders are left out, its COCO decoder scored) and must be the run's architecture; its notes
name the file and its SHA-256.

Writes `results_keypoints.json` (COCO results) and `metrics.json` (schema `vitpose-metrics/1`, see
docs/DEVELOPING.md) into `--out-dir`, each atomically; on any error neither is left behind.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages._cli import add_config_args, launch, load_run_config, remove_outputs_on_error, run_main
from vitpose.utils.errors import CheckpointError, UserError

SCHEMA = "vitpose-metrics/1"
METRICS_FILE = "metrics.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.evaluate", description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="released-format weights (default: the config's results/<scale>/<run>/model.pth)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where metrics.json is written (default: the config's results/<scale>/<run>)")
    parser.add_argument("--benchmark", type=Path, default=None,
                        help="benchmark JSON with train_memory_MB and throughput (default: the config's "
                             "results/<scale>/<run>/benchmark.json when it exists)")
    parser.add_argument("--released", action="store_true",
                        help="the checkpoint is an authors' released file: build its model from the file (a "
                             "multi-task file's COCO decoder) and check it is the run's architecture")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--in-process", action="store_true", help="evaluate in this process, not as a job")
    from vitpose.launch import add_launch_args

    add_launch_args(parser)
    return parser


def git_commit() -> str | None:
    """HEAD of the repository holding this code, or None outside git / before the first commit."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def read_benchmark(path: Path | None) -> dict[str, Any]:
    """`train_memory_MB` and `throughput` from the benchmark stage's JSON (both optional there)."""
    if path is None:
        return {"train_memory_MB": None, "throughput": None}
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: benchmark file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable JSON benchmark file ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with train_memory_MB and throughput")
    memory, throughput = data.get("train_memory_MB"), data.get("throughput")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, (int, float))):
        raise UserError(f"{path}: train_memory_MB: expected a number or null, got {memory!r}")
    if throughput is not None:
        if not isinstance(throughput, dict) or not isinstance(throughput.get("images_per_s"), (int, float)):
            raise UserError(f"{path}: throughput: expected an object with a numeric images_per_s, "
                            f"got {throughput!r}")
    return {"train_memory_MB": None if memory is None else float(memory), "throughput": throughput}


def defined(stats: dict) -> dict:
    """pycocotools reports -1 for a metric with no ground truth (e.g. no medium-size people): undefined,
    not a score, so it is stored as null."""
    return {k: (None if v is not None and v < 0 else v) for k, v in stats.items()}


def run_notes(cfg) -> list[str]:
    """What a reader of this run's numbers must know (shown in the tables' notes)."""
    notes = []
    trained = {d.dataset for d in cfg.datasets}
    if "crowdpose" in trained and cfg.data.dataset == "coco":
        # REFERENCE §6: CrowdPose's train images are drawn from COCO, MPII and AIC, val images included.
        notes.append("trained on CrowdPose, whose train images overlap other datasets' val images "
                     "(COCO val included): its COCO val score may be optimistic")
    spec = cfg.spec or {}
    if (cfg.model.is_vit and spec.get("pretrain") not in (None, "none") and cfg.pretrained is None
            and "pretrain" not in cfg.upstream):
        notes.append(f"initialised at random at scale {cfg.scale!r} (params.yaml imagenet_init: none), "
                     f"not from {spec['pretrain']} pre-training")
    return notes


def released_notes(checkpoint: Path, ignored: list[str]) -> list[str]:
    """What the table notes say of a released checkpoint's numbers: which file, evaluated here."""
    from vitpose.config import REPO_ROOT
    from vitpose.download.checksums import hash_file

    shown = checkpoint.relative_to(REPO_ROOT) if checkpoint.is_relative_to(REPO_ROOT) else checkpoint
    notes = [f"the authors' released checkpoint {shown} (sha256 {hash_file(checkpoint).digests().sha256[:12]}), "
             f"evaluated here with the paper's protocol"]
    if ignored:
        notes.append(f"a multi-task file: its COCO decoder scored, its other decoders ({', '.join(ignored)}) "
                     f"left out")
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.time()
    cfg = load_run_config(args)
    if cfg.unavailable:
        raise UserError(f"run {cfg.run}: unavailable: {cfg.unavailable}")
    # The run's declared files, from its config (options override them, e.g. for a released checkpoint).
    args.checkpoint = args.checkpoint or cfg.paths.resolve("checkpoint")
    args.out_dir = args.out_dir or cfg.paths.resolve("result_dir")
    if args.benchmark is None and cfg.paths.resolve("benchmark").is_file():
        args.benchmark = cfg.paths.resolve("benchmark")
    if not args.checkpoint.is_file():
        raise CheckpointError(f"{args.checkpoint}: checkpoint file not found")
    bench = read_benchmark(args.benchmark)

    from vitpose.engine.results_files import dataset_results_file
    from vitpose.report.metrics import validate_metrics
    from vitpose.utils.io import atomic_write_json

    out_dir = args.out_dir
    results = [out_dir / dataset_results_file(cfg, d) for d in range(len(cfg.datasets))]
    with remove_outputs_on_error([*results, out_dir / METRICS_FILE]):
        kwargs = dict(cfg=cfg, checkpoint=args.checkpoint, out_dir=out_dir, progress=not args.no_progress,
                      released=args.released)
        if args.in_process:
            from vitpose.engine.evaluation_job import evaluation_job

            done = evaluation_job(**kwargs)
        else:  # by name: this process never imports torch
            done = launch("vitpose.engine.evaluation_job:evaluation_job", kwargs, cfg, "evaluate", args)
        stats, costs, train_time, pretraining = (done[k] for k in ("stats", "costs", "train_time_s", "pretraining"))
        stats = dict(stats)
        notes = released_notes(args.checkpoint, stats.pop("ignored")) if args.released else run_notes(cfg)
        per_dataset = stats.pop("per_dataset", None)  # multi-dataset runs: every dataset, its own decoder
        config = cfg.to_dict()
        metrics = {
            "schema": SCHEMA,
            "run": cfg.run,
            "scale": cfg.scale,
            "synthetic": cfg.synthetic,
            "serves": config.get("serves") or [],
            "config": config,
            "config_hash": cfg.hash,
            "git_commit": git_commit(),
            "dataset": cfg.data.dataset,
            "split": "val",
            "boxes": "gt" if cfg.data.use_gt_boxes_for_eval else "detected",
            "metrics": defined(stats),
            **({"per_dataset": {name: defined(m) for name, m in per_dataset.items()}} if per_dataset else {}),
            **({"notes": notes} if notes else {}),
            **({"pretraining": pretraining} if pretraining else {}),
            **costs,
            **bench,
            # training (from the checkpoint's meta, all resumed segments) plus this evaluation
            "wall_time_s": (train_time or 0.0) + (time.time() - t0),
        }
        validate_metrics(json.loads(json.dumps(metrics)), str(out_dir / METRICS_FILE))
        atomic_write_json(out_dir / METRICS_FILE, metrics)
    print(json.dumps({"run": cfg.run, **stats, **({"per_dataset": per_dataset} if per_dataset else {})},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
