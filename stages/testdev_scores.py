"""Import the COCO server's test-dev scores into the run's metrics.json (Table 10).

    python -m stages.testdev_scores --config results/S/RUN/config.json --scores FILE

A manual step: the scores come from the evaluation server, to which the zip written by
`python -m stages.testdev` was uploaded by hand. FILE is what the server returned, in one of the forms
of vitpose/evaluation/testdev.py (a JSON object of metrics, pycocotools' stats, or COCOeval's printed
summary); the day it was scored comes from the file's "date" or `--date`. The run's metrics.json
(split test-dev) carries the server's numbers, labelled "scored by the COCO server on DATE" in its
notes, with the val AP of the same model(s) from val_metrics.json beside them.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stages._cli import add_config_args, load_run_config, remove_outputs_on_error, run_main
from stages.testdev import MANIFEST_FILE, MANIFEST_SCHEMA, VAL_METRICS_FILE
from vitpose.utils.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.testdev_scores", description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--scores", type=Path, required=True, help="the COCO server's scores (placed by hand)")
    parser.add_argument("--date", default=None, help="YYYY-MM-DD the server scored it (default: the file's 'date')")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_run_config(args)
    from vitpose.data.dataset import _load_json
    from vitpose.evaluation.testdev import read_server_scores, scored_label
    from vitpose.report.metrics import load_metrics, validate_metrics
    from vitpose.utils.io import atomic_write_json

    out_dir = cfg.paths.resolve("result_dir")
    writer = f"python -m stages.testdev --config {cfg.paths.file('config')} --det-file ..."
    for name in (MANIFEST_FILE, VAL_METRICS_FILE):
        if not (out_dir / name).is_file():
            raise UserError(f"{out_dir / name}: no such file; the test-dev submission writes it: `{writer}`")
    manifest = _load_json(str(out_dir / MANIFEST_FILE), "test-dev submission record")
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA \
            or manifest.get("config_hash") != cfg.hash:
        raise UserError(f"{out_dir / MANIFEST_FILE}: not the record of this configuration of run {cfg.run} "
                        f"(expected schema {MANIFEST_SCHEMA} and config hash {cfg.hash[:12]}); the scores would "
                        f"belong to another submission: re-run `{writer}` and upload again")
    val = load_metrics(out_dir / VAL_METRICS_FILE)
    scores = read_server_scores(args.scores, args.date)
    ap = val["metrics"].get("AP")
    notes = [scored_label(scores.date),
             f"submitted {manifest['zip']} (sha256 {manifest['zip_sha256'][:12]}): {manifest['results']} results "
             f"on {manifest['images_with_results']} of {manifest['images']} test-dev images",
             *[n for n in val.get("notes") or [] if n.startswith(("ensemble", "single"))],
             f"val AP of the same model(s), scored by this code: "
             f"{'—' if ap is None else f'{100 * ap:.1f}'}"]
    doc = {**val, "split": "test-dev", "metrics": scores.metrics, "notes": notes}
    metrics_file = cfg.paths.resolve("metrics")
    with remove_outputs_on_error([metrics_file]):
        validate_metrics(json.loads(json.dumps(doc)), str(metrics_file))
        atomic_write_json(metrics_file, doc)
    print(json.dumps({"run": cfg.run, "split": "test-dev", "date": scores.date, **scores.metrics}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
