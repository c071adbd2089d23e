"""MPII Human Pose in OpenMMLab's JSON layout: a list of people with MATLAB (1-based) coordinates.

Each entry of ``mpii_{train,val,trainval,test}.json`` is one annotated person::

    {"image": "015601864.jpg", "center": [594.0, 257.0], "scale": 3.021,
     "joints": [[620.0, 394.0], ... 16 ...], "joints_vis": [1, 1, ... 16 ...]}

``center`` is the person's rough position (MPII ``objpos``), ``scale`` the person's size in units of
200 px, ``joints`` the 16 MPII keypoints (:data:`vitpose.data.keypoints.MPII` order) in 1-based pixel
coordinates, ``joints_vis`` 1 where the joint is annotated. The test split has no joints.

The box of a person follows mmpose's MPII dataset: the center moves down by ``15 · scale`` px (the
``objpos`` sits high on the body), then both center and joints go from 1-based to 0-based (− 1); the box
is the square of side ``200 · scale`` around that center. This module turns it into the ``(x1, y1, x2,
y2)`` box of an :class:`~vitpose.data.dataset.Instance`; the shared pipeline then pads it by 1.25 — the
``scale × 1.25`` of mmpose — and widens it to the input aspect ratio (mmpose's MPII configs use square
inputs; at 256×192 the square box is widened to 0.75 aspect, never cropped). An entry whose center is
``-1`` (no position) is neither shifted nor padded, as in mmpose. Every entry is a sample, in file order,
with or without visible joints: ``mpii_val.json``'s order is the order of ``mpii_gt_val.mat`` that PCKh
is computed against (``vitpose.evaluation.pckh.evaluate_mpii``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from vitpose.data.dataset import Instance, TopDownDataset, _load_json
from vitpose.data.keypoints import MPII, KeypointMeta
from vitpose.data.transforms import BBOX_PADDING, AugmentConfig
from vitpose.utils.errors import DataError

SCALE_UNIT_PX = 200.0      # MPII `scale` is the person's size in units of 200 px
CENTER_SHIFT = 15.0        # px per unit of scale that mmpose moves the center down
REQUIRED_KEYS = ("image", "center", "scale")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mpii_box(center: Any, scale: float) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` (0-based px) of an MPII person, before the pipeline's ×1.25 padding.

    ``center`` (1-based ``[x, y]``) and ``scale`` (× 200 px) as in the JSON; see the module docstring.
    """
    cx, cy, s = float(center[0]), float(center[1]), float(scale)
    side = SCALE_UNIT_PX * s
    if cx != -1:
        cy += CENTER_SHIFT * s
    else:  # mmpose pads only positioned people: undo the pipeline's padding for the others
        side /= BBOX_PADDING
    cx, cy = cx - 1.0, cy - 1.0
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def mpii_image_id(image: str, index: int) -> int:
    """Integer image id: the file stem when it is a number (``015601864.jpg`` → 15601864, as mmpose),
    else ``index + 1``."""
    stem = Path(image).stem
    return int(stem) if stem.isdigit() else index + 1


def load_mpii_annotations(path: str | os.PathLike, num_keypoints: int = MPII.num_keypoints,
                          require_joints: bool = True) -> list[dict[str, Any]]:
    """Read and check an MPII JSON list; DataError naming the file and the entry on any defect.

    ``require_joints``: every entry must carry ``joints`` (K × [x, y]) and ``joints_vis`` (K); otherwise
    they are optional (the test split) but must be well formed where present.
    """
    path = str(path)
    data = _load_json(path, "MPII annotation")
    if not isinstance(data, list):
        raise DataError(f"{path}: expected the OpenMMLab MPII layout, a JSON list of people with "
                        f"image, center, scale, joints and joints_vis; got a {type(data).__name__}")
    for i, ann in enumerate(data):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotation #{i} is a {type(ann).__name__}; expected an object with "
                            f"image, center, scale, joints, joints_vis")
        missing = [k for k in REQUIRED_KEYS if k not in ann]
        if require_joints:
            missing += [k for k in ("joints", "joints_vis") if k not in ann]
        where = f"annotation #{i} (image {ann.get('image', '?')})"
        if missing:
            raise DataError(f"{path}: {where} lacks key(s) {', '.join(missing)}")
        if not isinstance(ann["image"], str) or not ann["image"]:
            raise DataError(f"{path}: annotation #{i} has image {ann['image']!r}; expected a file name")
        center = ann["center"]
        if not (isinstance(center, list) and len(center) == 2 and all(_is_number(v) for v in center)):
            raise DataError(f"{path}: {where} has center {center!r}; expected [x, y] numbers")
        if not (_is_number(ann["scale"]) and ann["scale"] > 0):
            raise DataError(f"{path}: {where} has scale {ann['scale']!r}; expected a positive number "
                            f"(person size / 200 px)")
        if "joints" in ann or "joints_vis" in ann:
            joints, vis = ann.get("joints"), ann.get("joints_vis")
            if not isinstance(joints, list) or len(joints) != num_keypoints or not all(
                    isinstance(j, list) and len(j) >= 2 and all(_is_number(v) for v in j[:2]) for j in joints):
                got = len(joints) if isinstance(joints, list) else type(joints).__name__
                raise DataError(f"{path}: {where} has joints of length {got}; expected {num_keypoints} "
                                f"[x, y] pairs for mpii")
            if not isinstance(vis, list) or len(vis) != num_keypoints or not all(_is_number(v) for v in vis):
                got = len(vis) if isinstance(vis, list) else type(vis).__name__
                raise DataError(f"{path}: {where} has joints_vis of length {got}; expected "
                                f"{num_keypoints} numbers (1 = annotated)")
    return data


def mpii_instances(data: list[dict[str, Any]], num_keypoints: int) -> list[Instance]:
    """One :class:`Instance` per entry, in file order; keypoints 0-based, visibility 0/1."""
    out = []
    for i, ann in enumerate(data):
        kpts = np.zeros((num_keypoints, 3), np.float32)
        if "joints" in ann:
            kpts[:, :2] = np.asarray([j[:2] for j in ann["joints"]], np.float32) - 1.0   # 1-based → 0-based
            kpts[:, 2] = (np.asarray(ann["joints_vis"], np.float32) > 0).astype(np.float32)
        out.append(Instance(mpii_image_id(ann["image"], i), ann["image"], None, None,
                            mpii_box(ann["center"], ann["scale"]), 1.0, kpts, ann_index=i))
    return out


class TopDownMpiiDataset(TopDownDataset):
    """Person crops of MPII in OpenMMLab's JSON layout; boxes from center / scale (module docstring).

    Args:
        ann_file: ``mpii_train.json`` / ``mpii_val.json`` (a JSON list).
        img_dir: the ``images/`` directory.
        meta: keypoint layout (default :data:`MPII`, 16 keypoints).
        train: augment; also requires joints on every entry (the val split has them too; only the test
            split lacks them).
        Other arguments as :class:`~vitpose.data.dataset.TopDownDataset`.

    MPII is always evaluated on its annotated boxes (mmpose does the same): there are no detections.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        img_dir: str | os.PathLike,
        meta: KeypointMeta = MPII,
        input_size: tuple[int, int] = (256, 192),
        heatmap_size: tuple[int, int] = (64, 48),
        train: bool = True,
        sigma: float = 2.0,
        aug: AugmentConfig | None = None,
        dataset_index: int | None = None,
    ) -> None:
        data = load_mpii_annotations(ann_file, meta.num_keypoints, require_joints=train)
        self.use_gt_boxes = True
        self.det_file = None
        super().__init__(mpii_instances(data, meta.num_keypoints), img_dir, meta, input_size,
                         heatmap_size, train, sigma, aug, ann_file, dataset_index)
