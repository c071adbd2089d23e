"""Evaluation by dataset name: the one entry point the evaluate stage calls.

=========  ================================================  ===============================================
dataset    protocol                                          metric keys (fractions)
=========  ================================================  ===============================================
coco       pycocotools keypoint AP, COCO-17 sigmas            AP AP50 AP75 APM APL AR AR50 AR75 ARM ARL
aic        the same with AIC's 14 sigmas, area 0.53·w·h       AP AP50 AP75 APM APL AR AR50 AR75 ARM ARL
crowdpose  AP with 14 sigmas, area 0.53·w·h, E/M/H splits     AP AP50 AP75 AR AR50 AR75 AP_easy AP_medium AP_hard
mpii       PCKh against mpii_gt_val.mat                       PCKh PCKh@0.1 Head Shoulder Elbow Wrist Hip Knee Ankle
=========  ================================================  ===============================================

-1 marks a metric without ground truth (the stage writes it as null). COCO-style datasets take COCO
keypoint results (``vitpose.evaluation.postprocess.topdown_results``); MPII takes one prediction per
person of ``mpii_val.json`` in file order (``vitpose.evaluation.pckh.evaluate_mpii``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from vitpose.data.keypoints import AIC, COCO, CROWDPOSE
from vitpose.evaluation.aic import evaluate_aic
from vitpose.evaluation.coco_eval import (
    STAT_NAMES,
    evaluable_count,
    evaluate_coco,
    load_ground_truth,
    require_evaluable,
)
from vitpose.evaluation.crowdpose import crowd_index_splits, evaluate_crowdpose
from vitpose.evaluation.pckh import GT_MAT_FILE, METRIC_NAMES as PCKH_METRICS, evaluate_mpii, load_mpii_gt
from vitpose.utils.errors import ConfigError, DataError

CROWDPOSE_METRICS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
METRICS: dict[str, tuple[str, ...]] = {"coco": STAT_NAMES, "aic": STAT_NAMES, "crowdpose": CROWDPOSE_METRICS,
                                       "mpii": PCKH_METRICS}
PRIMARY_METRIC = {"coco": "AP", "aic": "AP", "crowdpose": "AP", "mpii": "PCKh"}
# Whether a dataset's evaluation takes COCO results (detected or GT boxes, NMS) or one prediction per
# annotated person in file order (MPII: GT boxes, no NMS).
RESULT_KIND = {"coco": "coco_results", "aic": "coco_results", "crowdpose": "coco_results",
               "mpii": "per_instance"}


def _name(dataset_name: str) -> str:
    name = str(dataset_name).lower()
    if name not in METRICS:
        raise ConfigError(f"unknown dataset {dataset_name!r} for evaluation; expected one of "
                          f"{', '.join(sorted(METRICS))}")
    return name


def default_gt_mat(ann_file: str | Path) -> Path:
    """``mpii_gt_val.mat`` beside the val annotation file, where mmpose looks for it."""
    return Path(ann_file).parent / GT_MAT_FILE


def check_evaluation_inputs(dataset_name: str, ann_file: str | Path,
                            gt_mat: str | Path | None = None) -> int:
    """Check, before any inference, that ``dataset_name`` can be scored from these files.

    Returns the number of ground-truth people that will be scored; DataError naming the file when the
    files are missing, malformed or hold nothing to score.
    """
    name = _name(dataset_name)
    if name == "mpii":
        from vitpose.data.mpii import load_mpii_annotations

        gt = load_mpii_gt(gt_mat or default_gt_mat(ann_file))
        entries = load_mpii_annotations(ann_file, require_joints=False)
        if len(entries) != len(gt):
            raise DataError(f"{ann_file}: {len(entries)} people, but {gt.path} has {len(gt)}; "
                            f"{GT_MAT_FILE} belongs to mpii_val.json")
        scored = int(gt.visible.any(axis=1).sum())
        if not scored:
            raise DataError(f"{gt.path}: no annotated joint to score")
        return scored
    coco_gt = load_ground_truth(ann_file, area_from_bbox=name in ("aic", "crowdpose"))
    require_evaluable(coco_gt, ann_file)
    if name == "crowdpose":
        crowd_index_splits(coco_gt.dataset["images"], ann_file)
    return evaluable_count(coco_gt)


def evaluate_dataset(
    dataset_name: str,
    predictions: Any,
    ann_file: str | Path,
    results_file: str | Path,
    *,
    gt_mat: str | Path | None = None,
) -> dict[str, float]:
    """Score ``predictions`` with ``dataset_name``'s protocol; returns metric name -> fraction.

    Args:
        dataset_name: ``coco``, ``aic``, ``crowdpose`` or ``mpii``.
        predictions: COCO keypoint results for the COCO-style datasets; for ``mpii`` an (N, 16, 2|3)
            array (0-based image px, ``mpii_val.json`` order) or ``{instance_index, keypoints}`` dicts.
        ann_file: the val / test annotation file the predictions are for.
        results_file: where the cleaned predictions are written, atomically, after success.
        gt_mat: MPII only; default ``mpii_gt_val.mat`` beside ``ann_file``.

    Keys: see the module table (:data:`METRICS`).
    """
    name = _name(dataset_name)
    if name == "coco":
        return evaluate_coco(predictions, ann_file, results_file, sigmas=COCO.sigmas)
    if name == "aic":
        return evaluate_aic(predictions, ann_file, results_file, sigmas=AIC.sigmas)
    if name == "crowdpose":
        return evaluate_crowdpose(predictions, ann_file, results_file, sigmas=CROWDPOSE.sigmas)
    return evaluate_mpii(predictions, gt_mat or default_gt_mat(ann_file), results_file, ann_file=ann_file)
