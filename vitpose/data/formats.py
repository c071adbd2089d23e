"""Facts about the datasets' annotation formats shared by the loaders and the evaluators.

COCO-style files (COCO, AIC, CrowdPose) hold ``images``, ``annotations`` and ``categories``. An
annotation must have ``id``, ``image_id``, ``keypoints`` (3 × K numbers) and ``bbox`` (``[x, y, w,
h]``); the keys converted datasets omit get the defaults mmpose gives them (OpenMMLab's AIC files have
no ``iscrowd`` and no ``area``): ``iscrowd`` 0, ``category_id`` 1 (person), ``num_keypoints`` the number
of keypoints with v > 0, ``area`` w · h of the box.
"""
from __future__ import annotations

import math
from typing import Any

from vitpose.utils.errors import DataError

PERSON_CATEGORY_ID = 1
COCO_REQUIRED_KEYS = ("id", "image_id", "keypoints", "bbox")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_coco_annotation(ann: Any, index: int, where: str, num_keypoints: int | None = None) -> None:
    """DataError naming ``where`` (the file) and annotation ``index`` / id unless ``ann`` has the
    required keys, 3 × ``num_keypoints`` numeric keypoint values (when given) and a numeric box."""
    if not isinstance(ann, dict):
        raise DataError(f"{where}: annotations[{index}] is a {type(ann).__name__}; expected an object with "
                        f"{', '.join(COCO_REQUIRED_KEYS)}")
    missing = [k for k in COCO_REQUIRED_KEYS if k not in ann]
    if missing:
        raise DataError(f"{where}: annotation #{index} (id {ann.get('id', '?')}) lacks key(s) "
                        f"{', '.join(missing)}")
    kpts, bbox = ann["keypoints"], ann["bbox"]
    if not isinstance(kpts, list) or not all(_is_number(v) for v in kpts) or len(kpts) % 3:
        raise DataError(f"{where}: annotation #{index} (id {ann['id']}) has keypoints that are not a "
                        f"list of x, y, v numbers")
    if num_keypoints is not None and len(kpts) != 3 * num_keypoints:
        raise DataError(f"{where}: annotation #{index} (id {ann['id']}) has {len(kpts)} keypoint values; "
                        f"expected 3 × {num_keypoints} = {3 * num_keypoints}")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise DataError(f"{where}: annotation #{index} (id {ann['id']}) has bbox {bbox!r}; expected "
                        f"[x, y, w, h] numbers")


def fill_coco_defaults(ann: dict[str, Any]) -> dict[str, Any]:
    """Give a checked COCO-style annotation the keys converted datasets omit, as mmpose defaults them.

    ``iscrowd`` 0, ``category_id`` 1 (person), ``num_keypoints`` the keypoints with v > 0, ``area``
    w · h of the box (the OKS area of AIC / CrowdPose evaluation is 0.53 · w · h instead, see
    ``vitpose.evaluation.coco_eval.load_ground_truth``). Present keys are left alone; ``ann`` is changed
    in place and returned.
    """
    ann.setdefault("iscrowd", 0)
    ann.setdefault("category_id", PERSON_CATEGORY_ID)
    if "num_keypoints" not in ann:
        ann["num_keypoints"] = sum(1 for v in ann["keypoints"][2::3] if v > 0)
    if "area" not in ann:
        ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
    return ann


# --------------------------------------------------------------------------------------------- MPII
# `dataset_joints` of mpii_gt_val.mat, the MPII evaluation's short joint names, in MPII keypoint order
# (vitpose.data.keypoints.MPII); PCKh leaves out `pelv` and `thor`.
MPII_MAT_JOINTS = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
                   "rwri", "relb", "rsho", "lsho", "lelb", "lwri")
# The variables of mpii_gt_val.mat the evaluation reads, with their shapes (K = 16 joints, N people in
# mpii_val.json order): MATLAB (1-based) pixel coordinates.
MPII_MAT_VARIABLES = {
    "pos_gt_src": "(K, 2, N) ground-truth joints x, y",
    "jnt_missing": "(K, N) 1 where the joint is not annotated",
    "headboxes_src": "(2, 2, N) head box: [0] = (x1, y1), [1] = (x2, y2)",
    "dataset_joints": "1 × K cell of joint names",
}
