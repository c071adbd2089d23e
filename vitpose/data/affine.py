"""The UDP affine transform between an image and a top-down crop (REFERENCE §3 "UDP affine").

Unbiased data processing (UDP) measures sizes in pixel *intervals*: a crop of ``W`` pixels spans
``W - 1`` units, so the padded box ``[c - s/2, c + s/2]`` maps exactly onto the pixel centres
``0 .. W-1``. With θ the rotation, ``a = ((W - 1) / s_w, (H - 1) / s_h)``:

    p_crop = diag(a) · (R(θ) · (p_img - c) + s / 2)

Points are ``(x, y)``; sizes are ``(H, W)`` tuples; ``scale`` is the padded box size ``(w, h)`` in px.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def udp_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation_deg: float,
    output_size: tuple[int, int],
) -> np.ndarray:
    """Image → crop affine matrix of UDP.

    Args:
        center: (2,) box centre ``(x, y)`` in image pixels.
        scale: (2,) padded box size ``(w, h)`` in image pixels; both must be positive.
        rotation_deg: rotation θ in degrees; ``R(θ) = [[cos, -sin], [sin, cos]]`` as in the released
            implementation (counter-clockwise in x-right / y-up axes, i.e. clockwise on screen).
        output_size: crop size ``(H, W)``.

    Returns:
        (2, 3) float64 matrix ``M`` with ``p_crop = M[:, :2] @ p_img + M[:, 2]``. For θ = 0 the box
        corners ``c ∓ s/2`` map exactly to ``(0, 0)`` and ``(W - 1, H - 1)``.
    """
    center = np.asarray(center, dtype=np.float64).reshape(2)
    scale = np.asarray(scale, dtype=np.float64).reshape(2)
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ValueError(
            f"udp_warp_matrix: scale must be a positive (w, h) box size in px, got {scale}"
        )
    out_h, out_w = output_size
    a = np.array([(out_w - 1) / scale[0], (out_h - 1) / scale[1]])
    theta = math.radians(rotation_deg)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    linear = a[:, None] * rot                            # diag(a) · R
    offset = a * (scale / 2.0) - linear @ center         # diag(a) · (s/2 - R c)
    return np.concatenate([linear, offset[:, None]], axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix (crop → image for a UDP warp matrix)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"invert_affine: expected a (2, 3) matrix, got shape {matrix.shape}")
    return cv2.invertAffineTransform(matrix)


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` (H_img, W_img, C) into a crop (H, W, C): bilinear, zero border.

    ``matrix`` maps image → crop (as returned by :func:`udp_warp_matrix`). The channel axis is kept
    even for C = 1 (OpenCV drops it).
    """
    if image.ndim != 3:
        raise ValueError(f"warp_image: expected an (H, W, C) image, got shape {image.shape}")
    out_h, out_w = output_size
    crop = cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (int(out_w), int(out_h)),                         # OpenCV wants (width, height)
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return crop.reshape(out_h, out_w, image.shape[2])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to points (..., 2) ``(x, y)``; returns (..., 2) float64."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    if points.shape[-1] != 2:
        raise ValueError(f"transform_points: expected points of shape (..., 2), got {points.shape}")
    return points @ matrix[:, :2].T + matrix[:, 2]
