"""Instance rescoring of top-down results (REFERENCE §4 "Rescoring")."""
from __future__ import annotations

import numpy as np


def rescore(keypoint_scores: np.ndarray, box_score: float | np.ndarray, threshold: float = 0.2):
    """Box score × mean of the keypoint scores strictly above ``threshold`` (0 if none is).

    Args:
        keypoint_scores: (K,) or batched (..., K) keypoint confidences.
        box_score: detector score, scalar or (...,).
        threshold: keypoints at or below it do not count (the released value is 0.2).

    Returns:
        float for a single instance, (...,) float64 array for a batch.
    """
    scores = np.asarray(keypoint_scores, dtype=np.float64)
    counted = scores > threshold
    n = counted.sum(axis=-1)
    total = np.where(counted, scores, 0.0).sum(axis=-1)
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    result = mean * np.asarray(box_score, dtype=np.float64)
    return float(result) if result.ndim == 0 else result
