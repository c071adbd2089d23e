"""CrowdPose AP: COCO-style keypoint AP with maxDets 20, split by image crowd index (REFERENCE §6).

pycocotools' keypoint defaults already use maxDets 20; what differs from COCO is the OKS area
(0.53 · w · h of the ground-truth box, CrowdPose has no segmentation areas), the 14 sigmas, and the
easy / medium / hard APs: the same evaluation restricted to images with crowdIndex < 0.2, < 0.8, ≥ 0.8.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vitpose.data.keypoints import CROWDPOSE
from vitpose.evaluation.coco_eval import (
    check_results,
    keypoint_count,
    load_ground_truth,
    require_evaluable,
    run_cocoeval,
)
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_write_json

CROWD_INDEX_BOUNDS = (0.2, 0.8)


def crowd_index_splits(images: Sequence[dict], ann_file: str | Path) -> dict[str, list]:
    """Image ids by crowd level: ``easy`` (< 0.2), ``medium`` (< 0.8), ``hard`` (the rest)."""
    splits: dict[str, list] = {"easy": [], "medium": [], "hard": []}
    first, second = CROWD_INDEX_BOUNDS
    for image in images:
        if "crowdIndex" not in image:
            raise DataError(
                f"annotation file {ann_file}: image {image.get('id', '?')} lacks key 'crowdIndex' "
                "(needed for CrowdPose AP easy/medium/hard)"
            )
        crowd = image["crowdIndex"]
        level = "easy" if crowd < first else "medium" if crowd < second else "hard"
        splits[level].append(image["id"])
    return splits


def evaluate_crowdpose(
    results: Sequence[dict],
    ann_file: str | Path,
    results_file: str | Path,
    sigmas: Sequence[float] | np.ndarray = CROWDPOSE.sigmas,
) -> dict[str, float]:
    """CrowdPose metrics of ``results`` against ``ann_file``; writes ``results_file`` atomically.

    Returns:
        ``AP``, ``AP50``, ``AP75``, ``AR``, ``AR50``, ``AR75`` (all images) and ``AP_easy``,
        ``AP_medium``, ``AP_hard`` as fractions; -1 for a split without ground truth.
    """
    sigmas_arr = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    coco_gt = load_ground_truth(ann_file, area_from_bbox=True)
    require_evaluable(coco_gt, ann_file)
    k = keypoint_count(coco_gt, sigmas_arr, ann_file)
    clean = check_results(results, coco_gt, k, ann_file, results_file)
    splits = crowd_index_splits(coco_gt.dataset["images"], ann_file)

    # loadRes mutates its input, hence fresh copies for every run.
    stats = run_cocoeval(coco_gt, [dict(r) for r in clean], sigmas_arr).stats
    metrics = {name: float(stats[i]) for i, name in
               ((0, "AP"), (1, "AP50"), (2, "AP75"), (5, "AR"), (6, "AR50"), (7, "AR75"))}
    for level, image_ids in splits.items():
        if not image_ids:  # an empty imgIds list would mean "all images" to pycocotools
            metrics[f"AP_{level}"] = -1.0
            continue
        sub = run_cocoeval(coco_gt, [dict(r) for r in clean], sigmas_arr, image_ids=image_ids)
        metrics[f"AP_{level}"] = float(sub.stats[0])
    atomic_write_json(results_file, clean, indent=None)
    return metrics
