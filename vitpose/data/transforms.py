"""Top-down training augmentation and input normalisation (REFERENCE §3, mmpose 1.x defaults).

Order, as in the released pipeline: box → center/scale (×1.25) → random flip → half body → box jitter
(shift / scale / rotation) → widen the box to the input aspect → UDP affine warp (``vitpose.data.affine``)
→ ImageNet normalisation. Points are ``(x, y)`` image pixels; ``scale`` is a box size ``(w, h)`` in px.
Every random draw comes from the ``np.random.Generator`` passed in, so a sample's augmentation is a pure
function of its seed (see :func:`sample_rng`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import cv2
import numpy as np
import torch
from scipy import special

from vitpose.data.keypoints import KeypointMeta

BBOX_PADDING = 1.25
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and factors of the training augmentation; defaults are REFERENCE §3."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_total_keypoints: int = 9
    half_body_min_upper_keypoints: int = 2
    half_body_min_lower_keypoints: int = 3
    half_body_upper_prob: float = 0.7
    half_body_padding: float = 1.5
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_factor: float = 0.5
    scale_prob: float = 1.0
    rotate_factor: float = 80.0
    rotate_prob: float = 0.6

    @classmethod
    def off(cls, **overrides: float) -> "AugmentConfig":
        """No augmentation at all, except the fields given (e.g. ``AugmentConfig.off(flip_prob=1)``)."""
        none = cls(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0)
        return replace(none, **overrides)


class Augmented(NamedTuple):
    """Result of :func:`augment`: image (H_img, W_img, 3), keypoints (K, 2), visible (K,),
    center (2,), scale (2,) (not yet aspect-fixed), rotation in degrees, flipped."""

    image: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flipped: bool


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample: independent of worker count and order, so runs reproduce and
    resume exactly (same seed, epoch and index → same augmentation)."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def bbox_xyxy_to_center_scale(bbox: np.ndarray, padding: float = BBOX_PADDING
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Box ``(x1, y1, x2, y2)`` → center (2,) and padded size ``(w, h)·padding`` (2,), float32."""
    x1, y1, x2, y2 = np.asarray(bbox, dtype=np.float32)
    center = np.array([(x1 + x2) * 0.5, (y1 + y2) * 0.5], dtype=np.float32)
    scale = np.array([x2 - x1, y2 - y1], dtype=np.float32) * np.float32(padding)
    return center, scale


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Widen the box ``(w, h)`` (never shrink it) until ``w / h == aspect_ratio`` (input W / H)."""
    w, h = np.asarray(scale, dtype=np.float32)
    if w > h * aspect_ratio:
        return np.array([w, w / aspect_ratio], dtype=np.float32)
    return np.array([h * aspect_ratio, h], dtype=np.float32)


def truncated_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size,) draws of N(0, 1) truncated to [-1, 1]: ``scipy.stats.truncnorm.rvs(-1, 1, size,
    random_state=rng)``, the same numbers from the same uniform draws (tests/test_fast_paths.py checks it
    draw for draw against the installed scipy), without scipy's per-call overhead (≈ 1-2 ms, a quarter of
    a training sample's CPU time) or the import of scipy.stats (≈ 1.5 s in every training process)."""
    return _truncnorm_ppf(rng.uniform(size=size))


# scipy's truncnorm draws by inversion, ppf(u) with u = random_state.uniform(size); for a < 0 its ppf
# is ndtri_exp(logsumexp([log_ndtr(a), log(u) + log_mass(a, b)])). The constants of a = -1, b = 1:
_LOG_CDF_A = float(special.log_ndtr(-1.0))
_LOG_MASS = float(special.log1p(-special.ndtr(-1.0) - special.ndtr(-1.0)))   # central interval


def _truncnorm_ppf(u: np.ndarray) -> np.ndarray:
    """scipy's truncnorm ppf at ``u`` for a = -1, b = 1, operation for operation (logsumexp of two
    terms: max + log1p(exp(min - max)), or max + log 2 for a tie)."""
    with np.errstate(divide="ignore"):  # u = 0 (probability 2^-53) gives log 0 = -inf, as in scipy
        log_q = np.log(u) + _LOG_MASS
    high, low = np.maximum(_LOG_CDF_A, log_q), np.minimum(_LOG_CDF_A, log_q)
    with np.errstate(invalid="ignore"):
        log_sum = np.where(log_q == _LOG_CDF_A, np.log(2.0) + high, np.log1p(np.exp(low - high)) + high)
    return special.ndtri_exp(log_sum)


def flip_horizontal(image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray,
                    center: np.ndarray, flip_indices: tuple[int, ...]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mirror the image and its annotation: x → W_img − 1 − x, then swap left/right keypoints.

    Args: image (H_img, W_img, 3), keypoints (K, 2), visible (K,), center (2,).
    Returns the flipped image, keypoints (K, 2), visible (K,), center (2,).
    """
    last_x = image.shape[1] - 1  # pixel centres are integers, so column x lands on column W-1-x
    idx = list(flip_indices)
    kpts = keypoints.copy()
    kpts[:, 0] = last_x - kpts[:, 0]
    center = np.array([last_x - center[0], center[1]], dtype=np.float32)
    # cv2.flip: the same pixels as image[:, ::-1], several times faster than numpy's reversed copy.
    flipped = cv2.flip(image, 1).reshape(image.shape) if image.ndim == 3 else np.ascontiguousarray(image[:, ::-1])
    return flipped, kpts[idx], visible[idx].copy(), center


def half_body_box(keypoints: np.ndarray, visible: np.ndarray, meta: KeypointMeta,
                  cfg: AugmentConfig, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Maybe replace the box by one around the upper or lower body (released RandomHalfBody).

    Returns (center (2,), scale (2,)) of the half-body box, or None to keep the original box.
    The random draws are made only when the person has enough visible keypoints.
    """
    if visible.sum() < cfg.half_body_min_total_keypoints or rng.random() >= cfg.half_body_prob:
        return None
    upper = [k for k in meta.upper_body_ids if visible[k] > 0]
    lower = [k for k in meta.lower_body_ids if visible[k] > 0]
    prefer_upper = rng.random() < cfg.half_body_upper_prob
    upper_ok = len(upper) >= cfg.half_body_min_upper_keypoints
    lower_ok = len(lower) >= cfg.half_body_min_lower_keypoints
    if not (upper_ok or lower_ok):
        return None
    if upper_ok and lower_ok:
        chosen = upper if prefer_upper else lower
    else:
        chosen = upper if upper_ok else lower
    pts = keypoints[chosen].astype(np.float32)
    scale = (pts.max(axis=0) - pts.min(axis=0)) * np.float32(cfg.half_body_padding)
    if scale.max() < 1.0:  # coincident keypoints give no box to crop; keep the person's box
        return None
    return pts.mean(axis=0).astype(np.float32), scale.astype(np.float32)


def random_box_jitter(center: np.ndarray, scale: np.ndarray, cfg: AugmentConfig,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Truncated-normal shift (p ``shift_prob``), scale (p ``scale_prob``) and rotation
    (p ``rotate_prob``) of the box: c += 0.16·t₀₁·s, s *= 1 + 0.5·t₂, θ = 80·t₃ degrees.

    Returns center (2,), scale (2,), rotation (degrees).
    """
    t = truncated_normal(rng, 4)
    u = rng.random(3)
    center = center.astype(np.float32).copy()
    scale = scale.astype(np.float32).copy()
    if u[0] < cfg.shift_prob:
        center += (cfg.shift_factor * t[0:2] * scale).astype(np.float32)
    if u[1] < cfg.scale_prob:
        scale *= np.float32(1.0 + cfg.scale_factor * t[2])
    rotation = float(cfg.rotate_factor * t[3]) if u[2] < cfg.rotate_prob else 0.0
    return center, scale, rotation


def augment(image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, center: np.ndarray,
            scale: np.ndarray, meta: KeypointMeta, cfg: AugmentConfig,
            rng: np.random.Generator) -> Augmented:
    """Flip → half body → box jitter, in the released order.

    Args: image (H_img, W_img, 3), keypoints (K, 2) image px, visible (K,) 0/1, center (2,),
    scale (2,) the ×1.25 padded box size (aspect not yet fixed).
    """
    flipped = bool(rng.random() < cfg.flip_prob)
    if flipped:
        image, keypoints, visible, center = flip_horizontal(
            image, keypoints, visible, center, meta.flip_indices)
    half = half_body_box(keypoints, visible, meta, cfg, rng)
    if half is not None:
        center, scale = half
    center, scale, rotation = random_box_jitter(center, scale, cfg, rng)
    return Augmented(image, keypoints, visible, center, scale, rotation, flipped)


def _normalize_lut() -> np.ndarray:
    """(3, 256) float32: the normalised value of every uint8 level per channel, computed with the
    very float32 operations :func:`normalize_image` applies per pixel."""
    levels = np.arange(256, dtype=np.float32)[None, :]
    return (levels / 255.0 - IMAGENET_MEAN[:, None]) / IMAGENET_STD[:, None]


_NORMALIZE_LUT = _normalize_lut()


def normalize_image(crop: np.ndarray) -> torch.Tensor:
    """uint8 RGB crop (H, W, 3) → float32 (3, H, W) ``(crop / 255 - mean) / std`` (ImageNet).

    uint8 crops go through a per-channel lookup table (the same float32 values; OpenCV's LUT on each
    channel plane, written straight into the channel-first layout); other dtypes are computed directly.
    """
    if crop.dtype == np.uint8 and crop.ndim == 3 and crop.shape[2] == 3:
        out = np.empty((3, *crop.shape[:2]), dtype=np.float32)
        for c, plane in enumerate(cv2.split(crop)):
            out[c] = cv2.LUT(plane, _NORMALIZE_LUT[c][None])
        return torch.from_numpy(out)
    x = (crop.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
