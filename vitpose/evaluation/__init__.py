"""Evaluation: flip test, rescoring, OKS-NMS, top-down post-processing, COCO / AIC / CrowdPose AP, PCKh.

``evaluate_dataset(name, predictions, ann_file, results_file)`` dispatches by dataset name.
"""
from vitpose.evaluation.aic import evaluate_aic
from vitpose.evaluation.coco_eval import STAT_NAMES, evaluate_coco
from vitpose.evaluation.crowdpose import evaluate_crowdpose
from vitpose.evaluation.datasets import METRICS, PRIMARY_METRIC, check_evaluation_inputs, evaluate_dataset
from vitpose.evaluation.flip_test import flip_test
from vitpose.evaluation.nms import oks_iou, oks_nms
from vitpose.evaluation.pckh import evaluate_mpii, load_mpii_gt, pckh, pckh_per_joint
from vitpose.evaluation.postprocess import topdown_results
from vitpose.evaluation.rescoring import rescore

__all__ = [
    "METRICS", "PRIMARY_METRIC", "STAT_NAMES", "check_evaluation_inputs", "evaluate_aic", "evaluate_coco",
    "evaluate_crowdpose", "evaluate_dataset", "evaluate_mpii", "flip_test", "load_mpii_gt", "oks_iou",
    "oks_nms", "pckh", "pckh_per_joint", "topdown_results", "rescore",
]
