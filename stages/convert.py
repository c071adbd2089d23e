"""Convert weights between the released ViTPose format and transformers' VitPose format.

    python -m stages.convert --to hf --checkpoint model.pth --out vitpose-b-hf/
    python -m stages.convert --to released --checkpoint vitpose-b-hf/ --out vitpose-b.pth

`--to hf` writes a directory that `transformers.VitPoseForPoseEstimation.from_pretrained` loads
(`config.json` + `model.safetensors`); `--to released` writes a `.pth` that `stages.evaluate
--checkpoint`, `stages.predict` and `stages.export` take. Which models convert, and which are refused
and why: vitpose/models/hf_convert.py. Needs the `hf` extra (transformers, safetensors).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from stages._cli import remove_outputs_on_error, run_main
from vitpose.models.cli import add_model_args, model_overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.convert", description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, choices=("hf", "released"), help="the format to write")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="input: a released-format .pth (--to hf) or a transformers directory (--to released)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (hf) or .pth file (released)")
    add_model_args(parser, from_checkpoint=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vitpose.utils.errors import UserError

    try:
        from vitpose.models import hf_convert
    except ImportError as exc:
        raise UserError(f"the transformers format needs the `hf` extra (pip install -e '.[hf]'): {exc}") from None
    if args.to == "hf":
        if args.out.exists() and not args.out.is_dir():
            raise UserError(f"{args.out}: --to hf writes a directory (config.json + model.safetensors), "
                            f"and a file of that name exists")
        outputs = [args.out / hf_convert.HF_WEIGHTS, args.out / hf_convert.HF_CONFIG]
        with remove_outputs_on_error(outputs):
            notes = hf_convert.convert_released_to_hf(args.checkpoint, args.out, model_overrides(args))
    else:
        if model_overrides(args):
            raise UserError("--to released takes the architecture from the transformers config; the model "
                            "flags apply to --to hf only")
        notes = hf_convert.convert_hf_to_released(args.checkpoint, args.out)
    print(json.dumps({"to": args.to, "out": str(args.out), "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
