"""COCO test-dev submission and val metrics of a model or an ensemble (Table 10).

    python -m stages.testdev --config results/S/RUN/config.json --det-file F

The run's models are its upstream runs of roles member1, member2, ... (their model.pth; one member:
a single model, the `vitpose-g` row; several: their ensemble, the `+` row), or the `--checkpoint`
files. The inference runs as a launcher job (`--launcher local|slurm`). Writes into the run's result
directory, atomically, nothing when it fails:

    person_keypoints_test-dev2017_<name>_results.json, .zip   the upload for the COCO server
    val_results_keypoints.json, val_metrics.json             the same model(s) on COCO val, scored here
    testdev_submission.json                                   what was submitted (written last)

Uploading the zip and saving the server's scores is a manual step; `python -m stages.testdev_scores`
then writes the run's metrics.json (docs/VITPOSE_G.md).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from stages._cli import add_config_args, launch, load_run_config, remove_outputs_on_error, run_main
from vitpose.config import RUN_FILES
from vitpose.utils.errors import CheckpointError, ConfigError

VAL_METRICS_FILE = RUN_FILES["val_metrics"]
MANIFEST_FILE = RUN_FILES["testdev_record"]
MANIFEST_SCHEMA = "vitpose-testdev-submission/1"
_MEMBER_ROLE = re.compile(r"member(\d+)")


def build_parser() -> argparse.ArgumentParser:
    from vitpose.evaluation.testdev import DEFAULT_NAME

    parser = argparse.ArgumentParser(prog="python -m stages.testdev", description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--det-file", type=Path, required=True,
                        help="person detections on the test-dev images (released format, any detector's)")
    parser.add_argument("--image-info", type=Path, default=None,
                        help="test-dev image list (default: <data.root>/annotations/image_info_test-dev2017.json)")
    parser.add_argument("--images", type=Path, default=None, help="test-dev images (default: <data.root>/test2017)")
    parser.add_argument("--checkpoint", type=Path, action="append", default=None,
                        help="a member's released-format weights (repeat for an ensemble; default: the "
                             "model.pth of the run's upstream roles member1, member2, ...)")
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help=f"the [alg] field of the server's file name (default {DEFAULT_NAME})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--in-process", action="store_true", help="run in this process, not as a job")
    from vitpose.launch import add_launch_args

    add_launch_args(parser)
    return parser


def member_runs(cfg) -> list[str]:
    """The run ids of the upstream roles member1, member2, ... in that order."""
    roles = sorted((int(m.group(1)), run) for role, run in cfg.upstream.items()
                   if (m := _MEMBER_ROLE.fullmatch(role)))
    if not roles:
        raise ConfigError(f"run {cfg.run}: upstream: expected roles member1, member2, ... naming the runs "
                          f"whose models are submitted, got {sorted(cfg.upstream) or 'none'}; or give --checkpoint")
    return [run for _, run in roles]


def metrics_document(cfg, metrics: dict, split: str, members: Sequence[dict], notes: list[str]) -> dict:
    """A `vitpose-metrics/1` document of the run (COCO, detected boxes) for `split`; the costs are the
    members' summed (an ensemble runs every member)."""
    from stages.evaluate import SCHEMA, defined, git_commit
    from vitpose.engine.evaluation_job import model_costs
    from vitpose.models import ModelConfig

    each = [model_costs(ModelConfig.from_dict(m)) for m in members]
    costs = {key: None if any(c[key] is None for c in each) else sum(c[key] for c in each) for key in each[0]}
    config = cfg.to_dict()
    return {"schema": SCHEMA, "run": cfg.run, "scale": cfg.scale, "synthetic": cfg.synthetic,
            "serves": config.get("serves") or [], "config": config, "config_hash": cfg.hash,
            "git_commit": git_commit(), "dataset": "coco", "split": split, "boxes": "detected",
            "metrics": defined(metrics), "notes": notes, **costs}


def _shown(path: Path) -> str:
    """A path as the record keeps it: relative to the repository when inside it (machine-independent)."""
    from vitpose.config import REPO_ROOT

    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_run_config(args)
    from vitpose.config import RunPaths, resolve_path
    from vitpose.evaluation.testdev import submission_file_name, submission_zip_name

    submission_file_name(args.name)  # a bad name fails before anything runs
    if args.checkpoint:
        runs, checkpoints = [None] * len(args.checkpoint), [resolve_path(p) for p in args.checkpoint]
    else:
        runs = member_runs(cfg)
        checkpoints = [RunPaths.for_run(cfg.scale, run).resolve("checkpoint") for run in runs]
    for path in checkpoints:
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found (a member of run {cfg.run})")
    root = cfg.data.resolve("root")
    image_info = resolve_path(args.image_info or root / "annotations" / "image_info_test-dev2017.json")
    images = resolve_path(args.images or root / "test2017")
    out_dir = cfg.paths.resolve("result_dir")

    from vitpose.engine.testdev import VAL_RESULTS_FILE, submit_testdev
    from vitpose.download.checksums import hash_file
    from vitpose.report.metrics import validate_metrics
    from vitpose.utils.io import atomic_write_json

    outputs = [out_dir / n for n in (submission_file_name(args.name), submission_zip_name(args.name),
                                     VAL_RESULTS_FILE, VAL_METRICS_FILE, MANIFEST_FILE)]
    with remove_outputs_on_error(outputs):
        kwargs = dict(cfg=cfg, checkpoints=checkpoints, image_info=image_info,
                      det_file=resolve_path(args.det_file), images=images, out_dir=out_dir, name=args.name,
                      progress=not args.no_progress)
        out = submit_testdev(**kwargs) if args.in_process else launch(submit_testdev, kwargs, cfg, "testdev", args)
        n, size = len(checkpoints), "x".join(map(str, cfg.model.heatmap_size))
        notes = [f"ensemble of {n} models (flip-tested heatmaps, each member at its own input size, resampled "
                 f"to the largest member's {size} grid and averaged)" if n > 1 else "single model",
                 "val of the model(s) submitted to the COCO test-dev server (Table 10)"]
        val = metrics_document(cfg, out["val"], "val", out["members"], notes)
        validate_metrics(json.loads(json.dumps(val)), str(out_dir / VAL_METRICS_FILE))
        atomic_write_json(out_dir / VAL_METRICS_FILE, val)
        zip_path = out_dir / out["testdev"]["zip"]
        manifest = {"schema": MANIFEST_SCHEMA, "run": cfg.run, "scale": cfg.scale, "config_hash": cfg.hash,
                    "name": args.name, **out["testdev"], "zip_sha256": hash_file(zip_path).digests().sha256,
                    "members": [{"run": r, "checkpoint": _shown(p)} for r, p in zip(runs, checkpoints)],
                    "model_configs": out["members"], "image_info": _shown(image_info),
                    "det_file": _shown(kwargs["det_file"]), "val_metrics": val["metrics"]}
        atomic_write_json(out_dir / MANIFEST_FILE, manifest)
    print(json.dumps({"run": cfg.run, "val": val["metrics"], **out["testdev"]}, indent=2))
    print(f"upload {zip_path} to the COCO keypoint test-dev server, save its scores, then run "
          f"python -m stages.testdev_scores --config {args.config or cfg.paths.file('config')} --scores FILE",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
