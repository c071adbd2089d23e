"""Write the image index of one MAE pre-training set (Table 3); the DAG caches it as one JSON file.

    python -m stages.pretrain_data imagenet-1k --out data/pretrain/imagenet-1k.json \\
        --imagenet data/imagenet/train
    python -m stages.pretrain_data coco-crop --out data/pretrain/coco-crop.json \\
        --coco data/coco/annotations/person_keypoints_train2017.json data/coco/train2017
    python -m stages.pretrain_data coco+aic-crop --out data/pretrain/coco+aic-crop.json \\
        --coco data/coco/annotations/person_keypoints_train2017.json data/coco/train2017 \\
        --aic data/aic/annotations/aic_train.json \\
              data/aic/ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902
    python -m stages.pretrain_data coco+aic-nocrop --out ... --coco ANN IMAGES --aic ANN IMAGES

Sets and the sources each needs: imagenet-1k (--imagenet), coco-crop (--coco), coco+aic-crop and
coco+aic-nocrop (--coco and --aic); a source the set does not use is refused. The crop sets hold one
entry per person (not crowd, num_keypoints > 0, box with positive size inside the image and shorter
side ≥ --min-size px), cut as the top-down finetuning crop: box × --padding (1.25), widened to
--aspect-ratio w/h (0.75), clipped to the image. The nocrop set holds every whole image with at least
one such person; imagenet-1k every image of TRAIN_DIR/<class>/. vitpose/data/pretrain.py documents the
index format and every choice the paper leaves open.

The index is written atomically (nothing is written when anything fails); one line with the counts
goes to stderr. Bad input (a missing source, an annotation file or image folder that is missing or
empty, images named by the annotations but absent) prints `error: <message>` and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from stages._cli import run_main
from vitpose.data.pretrain import PRETRAIN_SETS, SET_SOURCES, CropRule, build_index, format_counts, write_index
from vitpose.utils.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stages.pretrain_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", choices=PRETRAIN_SETS, metavar="SET", help=f"one of {', '.join(PRETRAIN_SETS)}")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the index file to write (JSON)")
    p.add_argument("--coco", nargs=2, metavar=("ANN", "IMAGES"),
                   help="COCO train keypoint annotations and their image folder")
    p.add_argument("--aic", nargs=2, metavar=("ANN", "IMAGES"),
                   help="AI Challenger train annotations (COCO-style) and their image folder")
    p.add_argument("--imagenet", metavar="TRAIN_DIR", help="ImageNet-1k train folder of class folders")
    crop = p.add_argument_group("person crops (pose sets)")
    crop.add_argument("--padding", type=float, default=CropRule.padding,
                      help="box enlargement factor (default: %(default)s)")
    crop.add_argument("--aspect-ratio", type=float, default=CropRule.aspect_ratio,
                      help="crop width / height before clipping (default: %(default)s)")
    crop.add_argument("--min-size", type=float, default=CropRule.min_size,
                      help="smallest shorter side of a used person's box, px (default: %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = {"coco": args.coco, "aic": args.aic, "imagenet": args.imagenet}
    needed = SET_SOURCES[args.set]
    missing = [s for s in needed if given[s] is None]
    unused = [s for s, v in given.items() if v is not None and s not in needed]
    if missing:
        flags = {"coco": "--coco ANN IMAGES", "aic": "--aic ANN IMAGES", "imagenet": "--imagenet TRAIN_DIR"}
        raise UserError(f"set {args.set} is built from {' + '.join(needed)}; give "
                        + " and ".join(flags[s] for s in missing))
    if unused:
        raise UserError(f"set {args.set} does not use {', '.join('--' + s for s in unused)} "
                        f"(it is built from {' + '.join(needed)})")
    sources = {s: ({"train": given[s]} if s == "imagenet" else {"ann": given[s][0], "images": given[s][1]})
               for s in needed}
    rule = CropRule(padding=args.padding, aspect_ratio=args.aspect_ratio, min_size=args.min_size)
    doc = build_index(args.set, sources, rule)
    write_index(doc, args.out)
    print(f"{format_counts(doc)} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
