"""The report stage: every paper table and Figure 1 from `results/<scale>/**/metrics.json`.

    python -m stages.tables --scale smoke [--results results] [--params params.yaml] [--out paper_tables]
    python -m stages.tables --scale smoke --tables 5 [--tables 2 ...] [--figure1]   # just those files

Reads only the metrics files, the training curves of the runs (`train_curve.csv`), the test-dev
submissions' `val_metrics.json` (Table 10's notes), params.yaml (through workflow.registry: which run
serves each table row, and Table 1's hyper-parameters) and the paper's reference file; writes
`<out>/<scale>/` in one swap.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stages._cli import run_main
from vitpose.utils.errors import UserError
from vitpose.report.metrics import collect_metrics
from vitpose.report.reference import load_reference


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stages.tables", description=__doc__.split("\n")[0])
    p.add_argument("--scale", required=True, help="scale whose results to report (e.g. smoke, paper)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results root (default: results)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml (default: params.yaml)")
    p.add_argument("--out", type=Path, default=Path("paper_tables"), help="output root (default: paper_tables)")
    p.add_argument("--no-pdf", action="store_true", help="do not compile tables.pdf even if pdflatex exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--tables", type=int, action="append", choices=range(1, 11), metavar="N",
                   help="write only tableN.{tex,md} (repeatable); what `snakemake tableN` runs")
    p.add_argument("--figure1", action="store_true", help="write only Figure 1 (pdf, png, csv)")
    return p.parse_args(argv)


def read_curves(results: Path, plan: list[dict]) -> dict[str, list[dict]]:
    """The training curves (`train_curve.csv`) of the plan's runs that have one, by run id."""
    from vitpose.config import RUN_FILES
    from vitpose.engine.curve import read_curve

    out = {}
    for rid in dict.fromkeys(e["run"] for e in plan):
        path = results / rid / RUN_FILES["curve"]
        if path.is_file():
            try:
                out[rid] = read_curve(path)
            except (ValueError, OSError) as exc:
                raise UserError(f"{path}: not a training curve written by the training job ({exc})") from None
    return out


def read_val_metrics(results: Path, plan: list[dict]) -> dict[str, dict]:
    """The `val_metrics.json` (schema-checked) of the plan's runs that have one: test-dev submissions."""
    from vitpose.config import RUN_FILES
    from vitpose.report.metrics import load_metrics

    paths = {rid: results / rid / RUN_FILES["val_metrics"] for rid in dict.fromkeys(e["run"] for e in plan)}
    return {rid: load_metrics(path) for rid, path in paths.items() if path.is_file()}


def figure3_inputs(results: Path, plan: list[dict]) -> dict | None:
    """Figure 3's inputs: the run of FIGURE3_ROW (first seed), its val predictions and its val split
    (from its config.json); None while the run has not been evaluated."""
    import json

    from vitpose.config import RUN_FILES, resolve_path
    from workflow.registry import FIGURE3_ROW

    rid = next((e["run"] for e in plan if (e["table"], e["row"]) == (FIGURE3_ROW["table"], FIGURE3_ROW["row"])),
               None)
    if rid is None or not (results / rid / RUN_FILES["keypoints"]).is_file():
        return None
    try:
        data = json.loads((results / rid / RUN_FILES["config"]).read_text())["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{results / rid / RUN_FILES['config']}: cannot read the run's val split ({exc})") from None
    return {"run": rid, "label": FIGURE3_ROW["label"], "results": results / rid / RUN_FILES["keypoints"],
            "val_ann": resolve_path(data["val_ann"]), "val_images": resolve_path(data["val_images"])}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reference = load_reference()
    # Metrics first: a corrupt file fails the stage before anything is read or written.
    metrics = collect_metrics(args.results, args.scale)
    if not metrics:
        print(f"warning: no metrics.json under {args.results / args.scale}; every reproduced cell will be "
              "'—'", file=sys.stderr)
    from workflow.registry import load_registry

    registry = load_registry(args.params, args.scale)
    plan, hyper = registry.table_plan(), registry.hyperparameters()
    source = f"workflow.registry.table_plan({str(args.params)!r}, {args.scale!r})"
    from vitpose.report.build import build_report  # matplotlib: only once the inputs are known good

    only = ({f"table{n}" for n in args.tables or []} | ({"figure1"} if args.figure1 else set())) or None
    result = build_report(metrics, plan, hyper, reference, args.scale, args.out / args.scale,
                          synthetic=registry.scale_cfg["synthetic"],
                          plan_source=source, compile_latex=False if args.no_pdf else None,
                          progress=not args.quiet, only=only,
                          curves=None if only else read_curves(args.results / args.scale, plan),
                          val_metrics=read_val_metrics(args.results / args.scale, plan),
                          qualitative=None if only else figure3_inputs(args.results / args.scale, plan))
    if only:
        print(f"wrote {', '.join(result.files)} in {result.out_dir}/")
        return 0
    missing = sum(len(t.missing()) for t in result.tables)
    print(f"wrote {result.out_dir}/ ({len(result.files)} files, {len(metrics)} runs read, "
          f"{missing} missing entries listed in index.md)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
