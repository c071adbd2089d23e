"""Pose estimation on a user's own images (stages.predict): images + person boxes -> COCO keypoint results.

Boxes come from one of three places:
- a detection file (`boxes_from_file`): the COCO results format of the released detections, a list of
  `{"image_id" or "file_name", "bbox": [x, y, w, h], "score"}` (`category_id` other than 1 is skipped,
  and so are detections of images not among the inputs, unless none is);
- a person detector (vitpose/engine/detector.py): its boxes at or above its threshold; an image with
  none gets no pose;
- neither (`whole_image_boxes`): each image is one person box covering the whole image, score 1
  (meant for crops of single people, like the smoke scale's synthetic images).

Image ids: an image named by an integer (COCO's `000000397133.jpg` -> 397133) has that id when every
input is so named (ids unique); otherwise the images are numbered 1..N in sorted name order. Detection
files refer to images by either. `coco_images` lists the images in COCO's `images` form, so a results
file and it make a COCO pair.

The model part is the evaluation's own (`vitpose.engine.inference.predict`): crops, flip test, DARK-UDP
decoding, rescoring and OKS-NMS.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vitpose.data.dataset import Instance, TopDownDataset, _load_json
from vitpose.data.formats import PERSON_CATEGORY_ID
from vitpose.data.image_io import read_image_bgr
from vitpose.data.keypoints import KeypointMeta, get_meta
from vitpose.utils.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# The dataset a keypoint count means, where it means one (14: both AIC and CrowdPose).
KEYPOINTS_OF_COUNT = {17: "coco", 16: "mpii"}


@dataclass(frozen=True)
class InputImage:
    """One input image: its file, id (see the module docstring) and size in pixels."""

    path: Path
    image_id: int
    width: int
    height: int


def list_images(path: str | os.PathLike) -> list[Path]:
    """The image files of `path`: a directory's (not recursive, sorted by name) or the file itself."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the directory")
        return files
    if not path.exists():
        raise DataError(f"{path}: no such image file or directory")
    return [path]


def read_inputs(paths: list[Path], progress: bool = True) -> list[InputImage]:
    """Every image read once (DataError naming a missing, corrupt or truncated file before any
    inference) and given its id."""
    numeric = all(p.stem.isdigit() for p in paths) and len({int(p.stem) for p in paths}) == len(paths)
    images = []
    for i, path in enumerate(tqdm(paths, desc="check images", unit="image", disable=not progress,
                                  dynamic_ncols=True)):
        h, w = read_image_bgr(path).shape[:2]
        images.append(InputImage(path, int(path.stem) if numeric else i + 1, w, h))
    return images


def keypoint_meta_for(num_keypoints: int, name: str | None = None) -> KeypointMeta:
    """The keypoint layout of a model with `num_keypoints` outputs (`name` chooses it explicitly)."""
    if name is None:
        name = KEYPOINTS_OF_COUNT.get(num_keypoints)
        if name is None:
            raise ConfigError(f"--keypoints: a model with {num_keypoints} keypoints could be "
                              f"{'AIC or CrowdPose' if num_keypoints == 14 else 'no known dataset'}; "
                              f"give one of coco, aic, mpii, crowdpose")
    meta = get_meta(name)
    if meta.num_keypoints != num_keypoints:
        raise ConfigError(f"--keypoints {name}: {meta.num_keypoints} keypoints, but the model predicts "
                          f"{num_keypoints}")
    return meta


def _instance(image: InputImage, xyxy, score: float, det_index: int | None = None) -> Instance:
    return Instance(image.image_id, image.path.name, image.width, image.height,
                    tuple(float(v) for v in xyxy), float(score), None, det_index=det_index)


def whole_image_boxes(images: list[InputImage]) -> list[Instance]:
    """One person box per image: the whole image, score 1."""
    return [_instance(im, (0, 0, im.width, im.height), 1.0) for im in images]


def detector_boxes(images: list[InputImage], boxes: list[np.ndarray]) -> list[Instance]:
    """Instances of a detector's (n, 5) `(x1, y1, x2, y2, score)` boxes, one array per image."""
    return [_instance(im, b[:4], b[4], det_index=i) for im, found in zip(images, boxes)
            for i, b in enumerate(found) if b[2] > b[0] and b[3] > b[1]]


def boxes_from_file(path: str | os.PathLike, images: list[InputImage]) -> list[Instance]:
    """Instances of a detection file (see the module docstring); DataError naming the file and the
    detection for a malformed entry, or the file when none of its detections is of an input image."""
    dets = _load_json(str(path), "detection")
    if not isinstance(dets, list):
        raise DataError(f"{path}: expected a list of detections [{{image_id or file_name, bbox, score}}], "
                        f"got {type(dets).__name__}")
    by_id = {im.image_id: im for im in images}
    by_name = {im.path.name: im for im in images}
    out, matched = [], 0
    for i, det in enumerate(dets):
        if not isinstance(det, dict) or "bbox" not in det or not ("image_id" in det or "file_name" in det):
            raise DataError(f"{path}: detection #{i} must have bbox and image_id or file_name")
        image = by_name.get(det["file_name"]) if "file_name" in det else by_id.get(det["image_id"])
        if image is None:
            continue  # another image of the same set (e.g. the full val detections for a few images)
        matched += 1
        bbox, score = det["bbox"], det.get("score", 1.0)
        if (not isinstance(bbox, list) or len(bbox) < 4
                or not all(isinstance(v, (int, float)) for v in bbox[:4]) or not isinstance(score, (int, float))):
            raise DataError(f"{path}: detection #{i} has bbox {bbox!r} and score {score!r}; expected "
                            f"[x, y, w, h] and a number")
        if det.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID:
            continue
        x, y, w, h = (float(v) for v in bbox[:4])
        if not (w > 0 and h > 0):
            raise DataError(f"{path}: detection #{i} has a box of size {w}x{h}; expected positive sizes")
        out.append(_instance(image, (x, y, x + w, y + h), score, det_index=i))
    if dets and not matched:
        raise DataError(f"{path}: none of its {len(dets)} detections refers to an input image (by file_name, "
                        f"or image_id: {', '.join(str(im.image_id) for im in images[:3])}"
                        f"{' ...' if len(images) > 3 else ''})")
    return out


def predict_poses(model: torch.nn.Module, instances: list[Instance], image_dir: str | os.PathLike,
                  meta: KeypointMeta, *, batch_size: int = 32, flip_test: bool = True,
                  device: torch.device | str = "cpu", num_workers: int = 0, progress: bool = True) -> list[dict]:
    """COCO keypoint results of the boxes (`image_id`, `category_id`, flat `keypoints` [x, y, score] x K,
    `score`), after rescoring and OKS-NMS as in the evaluation; [] when there are no boxes.

    model: images (B, 3, H, W) -> heatmaps (B, K, H/4, W/4), with a `cfg` (input size).
    """
    from vitpose.engine.inference import predict

    if not instances:
        return []
    cfg = model.cfg
    dataset = TopDownDataset(instances, image_dir, meta, input_size=cfg.input_size,
                             heatmap_size=cfg.heatmap_size, train=False)
    model.to(device)
    return predict(model, dataset, batch_size, flip_test, device, num_workers=num_workers, progress=progress)


def coco_images(images: list[InputImage], meta: KeypointMeta) -> dict:
    """The inputs as a COCO annotation skeleton: `images` and the person category with its keypoints."""
    return {
        "images": [{"id": im.image_id, "file_name": im.path.name, "width": im.width, "height": im.height}
                   for im in images],
        "annotations": [],
        "categories": [{"id": PERSON_CATEGORY_ID, "name": "person", "keypoints": list(meta.keypoint_names),
                        "skeleton": [[i + 1, j + 1] for i, j in meta.skeleton]}],  # COCO's are 1-based
    }
