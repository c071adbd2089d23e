"""Object keypoint similarity (OKS) and greedy OKS-NMS (REFERENCE §4)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vitpose.data.keypoints import COCO


def oks_iou(
    g: np.ndarray,
    others: np.ndarray,
    area_g: float,
    areas: np.ndarray,
    sigmas: np.ndarray,
    vis_thr: float | None = None,
) -> np.ndarray:
    """OKS between one instance and M others, as the released NMS defines it.

    ``e_k = d_k² / (2σ_k)² / ((a_g + a_m)/2 + eps) / 2``, ``oks = mean_k exp(-e_k)``.

    Args:
        g: (K, 3) ``x, y, score`` of the reference instance.
        others: (M, K, 3) the other instances.
        area_g: area of ``g``; areas: (M,) areas of the others.
        sigmas: (K,) per-keypoint OKS sigmas.
        vis_thr: if set, only keypoints whose score exceeds it in *both* instances count; an
            instance pair with none gets OKS 0.

    Returns:
        (M,) float64 OKS values.
    """
    g = np.asarray(g, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64).reshape(-1, *g.shape)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2              # (K,)
    d2 = ((others[..., :2] - g[None, :, :2]) ** 2).sum(axis=-1)               # (M, K)
    mean_area = (area_g + areas)[:, None] / 2.0 + np.spacing(1)
    e = d2 / variances / mean_area / 2.0
    counted = np.ones_like(e, dtype=bool)
    if vis_thr is not None:
        counted = (g[None, :, 2] > vis_thr) & (others[..., 2] > vis_thr)
    n = counted.sum(axis=-1)
    total = np.where(counted, np.exp(-e), 0.0).sum(axis=-1)
    return np.divide(total, n, out=np.zeros_like(total), where=n > 0)


def oks_nms(
    instances: Sequence[dict],
    threshold: float = 0.9,
    sigmas: np.ndarray | None = None,
    vis_thr: float | None = None,
) -> list[int]:
    """Greedy NMS: keep the best-scoring instance, drop those with OKS > ``threshold`` to it, repeat.

    Args:
        instances: dicts with ``keypoints`` (K, 3), ``score`` and ``area``.
        threshold: OKS above which an instance is suppressed (0.9 in the released config).
        sigmas: (K,) OKS sigmas; COCO's by default.
        vis_thr: see :func:`oks_iou`.

    Returns:
        Indices into ``instances`` of the kept ones, by decreasing score (ties: lower index first).
    """
    if len(instances) == 0:
        return []
    sigmas = COCO.sigmas if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    keypoints = np.stack([np.asarray(inst["keypoints"], dtype=np.float64) for inst in instances])
    scores = np.array([float(inst["score"]) for inst in instances])
    areas = np.array([float(inst["area"]) for inst in instances])
    if keypoints.ndim != 3 or keypoints.shape[1:] != (len(sigmas), 3):
        raise ValueError(
            f"oks_nms: expected keypoints of shape (K, 3) with K = {len(sigmas)} (the number of "
            f"sigmas), got {keypoints.shape[1:]}"
        )
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        oks = oks_iou(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas, vis_thr)
        order = rest[oks <= threshold]
    return keep
