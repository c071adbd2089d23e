"""Drawing poses on images: the skeleton and each keypoint's score (stages.predict, Figure 3).

Limbs come from the dataset's keypoint metadata (`KeypointMeta.skeleton`); colours say the side
(left / right / the midline, from the `left_` / `right_` keypoint names), as pose papers draw them.
A keypoint is drawn when its score reaches `keypoint_threshold`, a limb when both of its ends are.
Line widths and text scale with the image, so small smoke-scale images and COCO photos both read.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vitpose.data.keypoints import KeypointMeta

# BGR
LEFT, RIGHT, MIDDLE = (255, 128, 0), (0, 128, 255), (0, 200, 0)
TEXT, OUTLINE = (255, 255, 255), (0, 0, 0)


def side_colors(meta: KeypointMeta) -> list[tuple[int, int, int]]:
    """(K,) BGR colour of each keypoint by its side."""
    return [LEFT if n.startswith("left_") else RIGHT if n.startswith("right_") else MIDDLE
            for n in meta.keypoint_names]


def poses_from_results(results: Sequence[dict], image_id: int, num_keypoints: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The COCO keypoint results of one image as arrays: poses (N, K, 3) `(x, y, score)`, scores (N,)."""
    rows = [r for r in results if r["image_id"] == image_id]
    poses = np.array([r["keypoints"] for r in rows], np.float32).reshape(len(rows), num_keypoints, 3)
    return poses, np.array([r.get("score", 1.0) for r in rows], np.float32)


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, thickness: int) -> None:
    # An outline under the text keeps it legible on any background.
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, OUTLINE, thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, thickness, cv2.LINE_AA)


def draw_label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of `image` (H, W, 3) uint8 with `text` in its top-left corner."""
    out = image.copy()
    scale = max(0.35, min(out.shape[:2]) / 600)
    _text(out, text, (4, int(4 + 22 * scale)), scale, max(1, round(scale)))
    return out


def draw_poses(image: np.ndarray, poses: np.ndarray, meta: KeypointMeta, *,
               instance_scores: np.ndarray | None = None, keypoint_threshold: float = 0.3,
               show_scores: bool = True, min_size: int = 0) -> np.ndarray:
    """A copy of `image` with every pose drawn.

    image: (H, W, 3) uint8 (BGR; for RGB the side colours swap hue, nothing else changes).
    poses: (N, K, 3) `(x, y, score)` in image pixels, K = meta.num_keypoints.
    instance_scores: (N,) person scores, written above each pose's topmost keypoint.
    show_scores: write each drawn keypoint's score beside it (two decimals).
    min_size: an image whose short side is smaller is first enlarged by an integer factor (nearest
    neighbour), so that text stays legible on small images; the result is then that much larger.
    """
    poses = np.asarray(poses, np.float32).reshape(-1, meta.num_keypoints, 3).copy()
    factor = max(1, -(-min_size // min(image.shape[:2])))
    if factor > 1:
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
        poses[..., :2] = (poses[..., :2] + 0.5) * factor - 0.5  # pixel centres stay on pixel centres
    out = np.ascontiguousarray(image.copy())
    size = min(out.shape[:2])
    width = max(1, round(size / 160))
    radius = width + 1
    scale = max(0.3, size / 1200)
    colors = side_colors(meta)
    for n, pose in enumerate(poses):
        shown = pose[:, 2] >= keypoint_threshold
        pts = [(int(round(x)), int(round(y))) for x, y in pose[:, :2]]
        for i, j in meta.skeleton:
            if shown[i] and shown[j]:
                color = colors[i] if colors[i] == colors[j] else MIDDLE
                cv2.line(out, pts[i], pts[j], color, width, cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            cv2.circle(out, pts[k], radius, colors[k], -1, cv2.LINE_AA)
            if show_scores:
                _text(out, f"{pose[k, 2]:.2f}", (pts[k][0] + radius + 1, pts[k][1]), scale, 1)
        if instance_scores is not None and shown.any():
            top = min((pts[k] for k in np.flatnonzero(shown)), key=lambda p: p[1])
            _text(out, f"person {instance_scores[n]:.2f}", (top[0], max(top[1] - 4 * radius, 10)),
                  scale * 1.2, 1)
    return out
