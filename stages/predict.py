"""Run a pose model on your own images: `python -m stages.predict --checkpoint FILE --images DIR|FILE`.

Person boxes: `--boxes DETECTIONS.json` (a list of {image_id or file_name, bbox [x, y, w, h], score}),
or `--detector FILE` (torchvision's `--detector-arch` with weights from FILE; nothing is downloaded;
an image where no person reaches `--det-threshold` gets no pose and its drawn copy says so), or
neither: each image is then ONE person box covering the whole image (for single-person crops).

The model is whatever the released-format checkpoint holds (architecture read from its weights; the
model flags override). Writes into `--out` (default `predictions/`): `keypoints.json` (COCO keypoint
results: image_id, category_id 1, keypoints [x, y, score] x K, score), `images.json` (the inputs as
COCO `images` + the person category, so the two make a COCO pair) and `drawn/<image name>`, each
input with the skeleton and the keypoint scores drawn. Every file is written atomically; on an
error none of this call's outputs is left behind.
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
    parser = argparse.ArgumentParser(prog="python -m stages.predict", description=__doc__.splitlines()[0],
                                     epilog="Without --boxes or --detector every image is one person box "
                                            "(the whole image).")
    parser.add_argument("--checkpoint", type=Path, required=True, help="released-format weights (.pth)")
    parser.add_argument("--images", type=Path, required=True, help="an image file or a directory of images")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", type=Path, default=None, help="person detections (COCO results JSON)")
    boxes.add_argument("--detector", type=Path, default=None,
                       help="state dict of a torchvision person detector (local file; never downloaded)")
    parser.add_argument("--detector-arch", default="fasterrcnn_resnet50_fpn",
                        help="torchvision detection model of --detector (default fasterrcnn_resnet50_fpn)")
    parser.add_argument("--det-threshold", type=float, default=0.5, help="detector score to keep a person box")
    parser.add_argument("--out", type=Path, default=Path("predictions"), help="output directory")
    parser.add_argument("--keypoints", default=None, choices=("coco", "aic", "mpii", "crowdpose"),
                        help="keypoint layout (default: by the model's keypoint count; 17 = coco)")
    parser.add_argument("--batch", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--no-flip", action="store_true", help="no flip test (the paper's protocol uses it)")
    parser.add_argument("--keypoint-threshold", type=float, default=0.3, help="draw keypoints scoring at least this")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_model_args(parser, from_checkpoint=True)
    return parser


def write_drawn(images, results, meta, out_dir: Path, threshold: float, empty_label: str, progress: bool) -> None:
    """One drawn copy per input under out_dir, in the input's format."""
    import cv2
    from tqdm import tqdm

    from vitpose.data.image_io import read_image_bgr
    from vitpose.utils.errors import OutputError
    from vitpose.utils.io import atomic_write_bytes
    from vitpose.visualize import draw_label, draw_poses, poses_from_results

    for im in tqdm(images, desc="draw", unit="image", disable=not progress, dynamic_ncols=True):
        poses, scores = poses_from_results(results, im.image_id, meta.num_keypoints)
        image = read_image_bgr(im.path)
        drawn = (draw_poses(image, poses, meta, instance_scores=scores, keypoint_threshold=threshold)
                 if len(poses) else draw_label(image, empty_label))
        target = out_dir / im.path.name
        ok, data = cv2.imencode(im.path.suffix, drawn)
        if not ok:
            raise OutputError(f"{target}: cannot encode the drawn image as {im.path.suffix}")
        atomic_write_bytes(target, data.tobytes())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from vitpose.engine import predict as lib
    from vitpose.models.architecture import load_pose_model
    from vitpose.utils.errors import ConfigError
    from vitpose.utils.io import atomic_write_json

    if args.batch < 1:
        raise ConfigError(f"--batch: expected a positive number of crops, got {args.batch}")
    progress = not args.no_progress
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, cfg, _ = load_pose_model(args.checkpoint, model_overrides(args))
    meta = lib.keypoint_meta_for(cfg.num_keypoints, args.keypoints)
    images = lib.read_inputs(lib.list_images(args.images), progress)
    if args.boxes is not None:
        instances = lib.boxes_from_file(args.boxes, images)
    elif args.detector is not None:
        from vitpose.engine.detector import detect_people, load_detector

        found = detect_people(load_detector(args.detector, args.detector_arch), [im.path for im in images],
                              args.det_threshold, device, progress)
        instances = lib.detector_boxes(images, found)
    else:
        instances = lib.whole_image_boxes(images)
    results = lib.predict_poses(model, instances, images[0].path.parent, meta, batch_size=args.batch,
                                flip_test=not args.no_flip, device=device, num_workers=args.workers,
                                progress=progress)
    drawn_dir = args.out / "drawn"
    outputs = [args.out / "keypoints.json", args.out / "images.json", *(drawn_dir / im.path.name for im in images)]
    with remove_outputs_on_error(outputs):
        empty = "no person detected" if args.detector is not None else "no box for this image"
        write_drawn(images, results, meta, drawn_dir, args.keypoint_threshold, empty, progress)
        atomic_write_json(args.out / "images.json", lib.coco_images(images, meta))
        atomic_write_json(args.out / "keypoints.json", results)
    posed = len({r["image_id"] for r in results})
    print(json.dumps({"images": len(images), "boxes": len(instances), "poses": len(results),
                      "images_without_pose": len(images) - posed, "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
