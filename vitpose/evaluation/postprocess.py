"""Top-down post-processing: rescoring and per-image OKS-NMS into COCO results (REFERENCE §4)."""
from __future__ import annotations

import numpy as np

from vitpose.evaluation.nms import oks_nms_arrays
from vitpose.evaluation.rescoring import rescore


def topdown_results(
    keypoints_img: np.ndarray,
    scores: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    box_scores: np.ndarray,
    image_ids: np.ndarray,
    sigmas: np.ndarray,
    nms_threshold: float | None = 0.9,
    score_threshold: float = 0.2,
    category_id: int = 1,
) -> list[dict]:
    """Turn per-box predictions into COCO keypoint results.

    Args:
        keypoints_img: (N, K, 2) ``(x, y)`` in image pixels.
        scores: (N, K) keypoint confidences (heatmap maxima).
        centers: (N, 2) box centres (unused by the maths, checked for shape).
        scales: (N, 2) padded box sizes ``(w, h)``; ``s_w · s_h`` is the area used by OKS-NMS.
        box_scores: (N,) detector scores (1 for ground-truth boxes).
        image_ids: (N,) image id of each box.
        sigmas: (K,) OKS sigmas of the dataset.
        nms_threshold: OKS-NMS threshold per image; ``None`` keeps every instance.
        score_threshold: keypoint scores above it enter the rescoring mean.
        category_id: category of every result (1 = person).

    Returns:
        One dict per kept instance, grouped by increasing image id, by decreasing score within an
        image: ``image_id`` (int), ``category_id``, ``keypoints`` (flat ``[x, y, score] × K``) and
        ``score``. No ``bbox`` key: pycocotools would take the area from it (REFERENCE §4).
    """
    keypoints_img = np.asarray(keypoints_img, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    n, k = scores.shape
    scales = np.asarray(scales, dtype=np.float64)
    box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    image_ids = np.asarray(image_ids).reshape(-1)
    shapes = {
        "keypoints_img": (keypoints_img.shape, (n, k, 2)),
        "centers": (np.shape(centers), (n, 2)),
        "scales": (scales.shape, (n, 2)),
        "box_scores": (box_scores.shape, (n,)),
        "image_ids": (image_ids.shape, (n,)),
        "sigmas": (np.shape(sigmas), (k,)),
    }
    for name, (got, want) in shapes.items():
        if tuple(got) != want:
            raise ValueError(f"topdown_results: {name} has shape {tuple(got)}, expected {want}")

    if n == 0:
        return []
    instance_scores = rescore(scores, box_scores, threshold=score_threshold)   # (N,)
    areas = scales[:, 0] * scales[:, 1]
    flat = np.concatenate([keypoints_img, scores[..., None]], axis=-1)        # (N, K, 3)

    # Boxes grouped by image id (increasing), in input order within an image.
    by_image = np.argsort(image_ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, image_ids[by_image][1:] != image_ids[by_image][:-1]])
    ends = np.r_[starts[1:], n]

    results: list[dict] = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        members = by_image[start:end]
        if nms_threshold is None:
            kept = np.argsort(-instance_scores[members], kind="stable")
        else:
            kept = oks_nms_arrays(flat[members], instance_scores[members], areas[members],
                                  threshold=nms_threshold, sigmas=sigmas)
        image_id = int(image_ids[members[0]])
        chosen = members[kept]
        for values, score in zip(flat[chosen].reshape(len(chosen), -1).tolist(),
                                 instance_scores[chosen].tolist()):
            results.append({
                "image_id": image_id,
                "category_id": category_id,
                "keypoints": values,
                "score": score,
            })
    return results
