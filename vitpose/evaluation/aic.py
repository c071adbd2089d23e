"""AI Challenger keypoint AP: COCO-style AP with AIC's 14 sigmas on ground-truth boxes (REFERENCE §6).

As mmpose evaluates it (xtcocotools with ``use_area=False``): the OKS area is ``0.53 · w · h`` of the
ground-truth box, since OpenMMLab's converted files have no segmentation areas; their missing
``iscrowd`` is 0. Everything else is :func:`vitpose.evaluation.coco_eval.evaluate_coco`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vitpose.data.keypoints import AIC
from vitpose.evaluation.coco_eval import evaluate_coco


def evaluate_aic(
    results: Sequence[dict],
    ann_file: str | Path,
    results_file: str | Path,
    sigmas: Sequence[float] | np.ndarray = AIC.sigmas,
) -> dict[str, float]:
    """AIC AP / AR of COCO-format keypoint ``results`` (14 keypoints) against ``ann_file``.

    Writes ``results_file`` atomically after a successful evaluation. Returns the COCO keys ``AP``,
    ``AP50``, ``AP75``, ``APM``, ``APL``, ``AR``, ``AR50``, ``AR75``, ``ARM``, ``ARL`` (fractions; -1
    where pycocotools has no ground truth for a bucket).
    """
    return evaluate_coco(results, ann_file, results_file, sigmas=sigmas, area_from_bbox=True)
