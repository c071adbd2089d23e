"""Export a pose model for deployment: `python -m stages.export --checkpoint FILE --format onnx`.

Writes `--out` (default: the checkpoint's name with `.onnx`): input `images` (B, 3, H, W) normalised
RGB crops, output `heatmaps` (B, K, H/4, W/4), the batch axis dynamic. The export is then run with
onnxruntime (CPU) on batches of 1 and 3 against PyTorch; a difference above `--atol` (default 1e-4)
removes the file and exits 1. The architecture is read from the checkpoint (the model flags override).
For TensorRT, build an engine from the ONNX file (`trtexec --onnx=FILE`; dynamic batch: give
`--minShapes/--optShapes/--maxShapes` for `images`).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stages._cli import run_main
from vitpose.models.cli import add_model_args, model_overrides

FORMATS = ("onnx",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.export", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="released-format weights (.pth)")
    parser.add_argument("--format", default="onnx", choices=FORMATS)
    parser.add_argument("--out", type=Path, default=None, help="output file (default: CHECKPOINT.onnx)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest heatmap difference accepted")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime check")
    add_model_args(parser, from_checkpoint=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vitpose.engine.predict import KEYPOINTS_OF_COUNT
    from vitpose.data.keypoints import get_meta
    from vitpose.models.architecture import load_pose_model
    from vitpose.models.export_onnx import ExportMismatch, check_onnx, export_onnx, remove_export

    out = args.out or args.checkpoint.with_suffix(".onnx")
    model, cfg, _ = load_pose_model(args.checkpoint, model_overrides(args))
    known = KEYPOINTS_OF_COUNT.get(cfg.num_keypoints)
    export_onnx(model, out, keypoint_names=get_meta(known).keypoint_names if known else None, opset=args.opset)
    check = None
    if not args.no_check:
        try:
            check = check_onnx(model, out, atol=args.atol)
        except ExportMismatch as exc:
            remove_export(out)
            print(f"error: {exc}; the export was removed", file=sys.stderr)
            return 1
    print(json.dumps({"out": str(out), "format": args.format, "model": cfg.to_dict(), "check": check}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
