"""Evaluation: flip test, rescoring, OKS-NMS, top-down post-processing, COCO / CrowdPose AP, PCKh."""
from vitpose.evaluation.coco_eval import STAT_NAMES, evaluate_coco
from vitpose.evaluation.crowdpose import evaluate_crowdpose
from vitpose.evaluation.flip_test import flip_test
from vitpose.evaluation.nms import oks_iou, oks_nms
from vitpose.evaluation.pckh import pckh, pckh_per_joint
from vitpose.evaluation.postprocess import topdown_results
from vitpose.evaluation.rescoring import rescore

__all__ = [
    "STAT_NAMES", "evaluate_coco", "evaluate_crowdpose", "flip_test", "oks_iou", "oks_nms", "pckh",
    "pckh_per_joint", "topdown_results", "rescore",
]
