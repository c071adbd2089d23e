"""MPII PCKh: a joint is correct when its error is within a fraction of the head size (REFERENCE §6)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vitpose.data.keypoints import MPII
from vitpose.utils.errors import DataError

# Head size = 0.6 × head-box diagonal, the MPII protocol's normaliser.
HEAD_SIZE_FACTOR = 0.6


def pckh_per_joint(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_boxes: np.ndarray,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint hit counts of PCKh@``threshold``.

    Args:
        pred: (N, K, 2) predicted ``(x, y)``; gt: (N, K, 2) ground truth, same image frame.
        visible: (N, K) 1 where the joint is annotated (only those are scored).
        head_boxes: (N, 4) head boxes ``x1, y1, x2, y2``.
        threshold: fraction of the head size.

    Returns:
        hits: (K,) number of visible joints with ``|pred - gt| / head_size ≤ threshold``.
        counts: (K,) number of visible joints.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible) > 0
    head_boxes = np.asarray(head_boxes, dtype=np.float64).reshape(-1, 4)
    if pred.shape != gt.shape or pred.shape[:2] != visible.shape or len(head_boxes) != len(pred):
        raise ValueError(
            f"pckh: shapes disagree: pred {pred.shape}, gt {gt.shape}, visible {visible.shape}, "
            f"head_boxes {head_boxes.shape}"
        )
    head_size = HEAD_SIZE_FACTOR * np.linalg.norm(head_boxes[:, 2:] - head_boxes[:, :2], axis=1)
    bad = np.flatnonzero(~(head_size > 0))
    if bad.size:
        raise DataError(f"pckh: instance(s) {bad[:10].tolist()} have an empty head box")
    error = np.linalg.norm(pred - gt, axis=-1) / head_size[:, None]                # (N, K)
    hits = ((error <= threshold) & visible).sum(axis=0)
    return hits, visible.sum(axis=0)


def pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_boxes: np.ndarray,
    threshold: float = 0.5,
    exclude: Sequence[int] = (MPII.index("pelvis"), MPII.index("thorax")),
) -> float:
    """Mean PCKh over joints weighted by their visible counts, without pelvis and thorax (MPII).

    Equal to (hits / visible) pooled over the kept joints; a fraction in [0, 1].
    """
    hits, counts = pckh_per_joint(pred, gt, visible, head_boxes, threshold)
    keep = np.ones(len(counts), dtype=bool)
    keep[list(exclude)] = False
    total = counts[keep].sum()
    if total == 0:
        raise DataError("pckh: no visible joints to score")
    return float(hits[keep].sum() / total)
