"""A synthetic stand-in for ImageNet-1k at the smoke scale: iconic images of non-person objects.

Written under ``root`` in ImageNet's class-folder layout (what ``torchvision.datasets.ImageFolder``
and ``vitpose.data.pretrain`` read)::

    train/<class>/<class>_<i>.JPEG      val/<class>/<class>_<i>.JPEG

Every image shows one dominant object — its class's shape family (disc, ring, star, square, triangle,
stripes, checker blob, cross, hexagon, crescent, ellipse, arrow) in colours near the class's hue — at
a random position, scale and rotation, over a textured background (gradient, smooth noise, lines)
with a few small, low-contrast clutter shapes of other families, plus sensor noise. That gives MAE
structure to reconstruct (edges, flat regions, repeated texture) and a classifier something to learn,
without any person in sight. Classes beyond the twelve families reuse a family with another hue.

Image ``i`` of a split belongs to class ``i mod num_classes`` (balanced classes) and is drawn from
``default_rng([seed, split code, i])`` only: the same seed gives the same files (byte-identical JPEGs
on the same OpenCV build), whatever the other split's size. Every class folder exists in both splits,
even when a split has fewer images than classes, so train and val always list the same classes.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from vitpose.utils.errors import ConfigError
from vitpose.utils.io import atomic_write_bytes

SPLIT_CODES = {"train": 1, "val": 2}
FAMILIES = ("disc", "ring", "star", "square", "triangle", "stripes", "checker", "cross", "hexagon",
            "crescent", "ellipse", "arrow")
_SHIFT = 4                     # OpenCV fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT


def class_names(num_classes: int) -> list[str]:
    """``c000-disc``, ``c001-ring``, ...: sorted by name in class order."""
    return [f"c{k:03d}-{FAMILIES[k % len(FAMILIES)]}" for k in range(num_classes)]


def _class_hue(k: int) -> float:
    """The class's hue (OpenCV's 0..180): spread by the golden angle, so neighbours differ."""
    return (k * 180 * 0.618034 + 17) % 180


def _hsv_colour(h: float, s: float, v: float) -> tuple[int, int, int]:
    hsv = np.array([[[h % 180, np.clip(s, 0, 255), np.clip(v, 0, 255)]]], dtype=np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A muted gradient with smooth noise and a few lines: (H, W, 3) uint8 RGB."""
    base_h = rng.uniform(0, 180)
    c0 = np.array(_hsv_colour(base_h, rng.uniform(10, 90), rng.uniform(60, 220)), np.float32)
    c1 = np.array(_hsv_colour(base_h + rng.uniform(-30, 30), rng.uniform(10, 90), rng.uniform(60, 220)),
                  np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx * math.cos(angle) + yy * math.sin(angle))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    grid = (max(2, height // 12), max(2, width // 12))
    coarse = rng.normal(0.0, 14.0, size=(*grid, 1)) + rng.normal(0.0, 5.0, size=(*grid, 3))
    img += cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 4))):
        p0 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        p1 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        shade = tuple(int(np.clip(c + rng.normal(0, 25), 0, 255)) for c in img[p0[1], p0[0]])
        cv2.line(img, p0, p1, shade, int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32)


def _polygon(n: int, radius: float, inner: float | None = None) -> np.ndarray:
    """A regular n-gon (or a 2n-pointed star with ``inner`` radius) around the origin, (k, 2)."""
    if inner is None:
        a = np.arange(n) * 2 * math.pi / n - math.pi / 2
        return radius * np.stack([np.cos(a), np.sin(a)], 1)
    a = np.arange(2 * n) * math.pi / n - math.pi / 2
    r = np.where(np.arange(2 * n) % 2 == 0, radius, inner)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def draw_object(img: np.ndarray, family: str, centre: tuple[float, float], size: float, angle: float,
                colour: Sequence[int], accent: Sequence[int], rng: np.random.Generator) -> None:
    """Draw one object of ``family`` in place: ``size`` is its radius in px, ``angle`` in degrees."""
    cx, cy = centre
    rot = np.array([[math.cos(math.radians(angle)), -math.sin(math.radians(angle))],
                    [math.sin(math.radians(angle)), math.cos(math.radians(angle))]])

    def place(points: np.ndarray) -> np.ndarray:
        return _pts(points @ rot.T + np.array([cx, cy]))

    def fill(points: np.ndarray, c: Sequence[int]) -> None:
        cv2.fillPoly(img, [place(points)], c, cv2.LINE_AA, _SHIFT)

    c_fx = (int(round(cx * _ONE)), int(round(cy * _ONE)))
    if family == "disc":
        cv2.circle(img, c_fx, int(size * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, c_fx, int(0.35 * size * _ONE), accent, -1, cv2.LINE_AA, _SHIFT)
    elif family == "ring":
        cv2.circle(img, c_fx, int(0.8 * size * _ONE), colour, max(2, int(0.35 * size)), cv2.LINE_AA, _SHIFT)
    elif family == "star":
        fill(_polygon(5, size, 0.42 * size), colour)
    elif family == "square":
        fill(_polygon(4, size), colour)
        fill(_polygon(4, 0.45 * size), accent)
    elif family == "triangle":
        fill(_polygon(3, size), colour)
    elif family == "stripes":
        x = np.linspace(-size, size, 7)
        for k in range(6):
            c = colour if k % 2 == 0 else accent
            fill(np.array([[x[k], -size], [x[k + 1], -size], [x[k + 1], size], [x[k], size]]), c)
    elif family == "checker":
        cells = 4
        step = 2 * size / cells
        for i in range(cells):
            for j in range(cells):
                x0, y0 = -size + i * step, -size + j * step
                c = colour if (i + j) % 2 == 0 else accent
                fill(np.array([[x0, y0], [x0 + step, y0], [x0 + step, y0 + step], [x0, y0 + step]]), c)
    elif family == "cross":
        t = 0.3 * size
        fill(np.array([[-size, -t], [size, -t], [size, t], [-size, t]]), colour)
        fill(np.array([[-t, -size], [t, -size], [t, size], [-t, size]]), colour)
    elif family == "hexagon":
        fill(_polygon(6, size), colour)
        cv2.circle(img, c_fx, int(0.3 * size * _ONE), accent, -1, cv2.LINE_AA, _SHIFT)
    elif family == "crescent":
        off = np.array([0.45 * size, -0.15 * size]) @ rot.T
        bite = (int(round((cx + off[0]) * _ONE)), int(round((cy + off[1]) * _ONE)))
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.circle(mask, c_fx, int(size * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(mask, bite, int(0.8 * size * _ONE), 0, -1, cv2.LINE_AA, _SHIFT)
        a = mask.astype(np.float32)[..., None] / 255.0
        img[:] = np.clip(img * (1.0 - a) + np.asarray(colour, np.float32) * a, 0, 255).astype(np.uint8)
    elif family == "ellipse":
        axes = (int(size * _ONE), int(0.5 * size * _ONE))
        cv2.ellipse(img, c_fx, axes, angle, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(img, c_fx, axes, angle, 0, 360, accent, max(1, int(0.1 * size)), cv2.LINE_AA, _SHIFT)
    elif family == "arrow":
        t = 0.22 * size
        fill(np.array([[-size, -t], [0.1 * size, -t], [0.1 * size, t], [-size, t]]), colour)
        fill(np.array([[0.1 * size, -0.7 * size], [size, 0.0], [0.1 * size, 0.7 * size]]), colour)
    else:  # pragma: no cover - FAMILIES lists every branch
        raise ValueError(family)


def render_image(rng: np.random.Generator, class_index: int, image_size: tuple[int, int]) -> np.ndarray:
    """One image of class ``class_index``: (H, W, 3) uint8 RGB."""
    H, W = image_size
    img = _background(rng, H, W)
    side = min(H, W)
    family = FAMILIES[class_index % len(FAMILIES)]
    # Clutter first: small, low-saturation shapes of other families.
    for _ in range(int(rng.integers(1, 4))):
        other = FAMILIES[int(rng.integers(0, len(FAMILIES)))]
        grey = _hsv_colour(rng.uniform(0, 180), rng.uniform(0, 60), rng.uniform(50, 200))
        grey2 = _hsv_colour(rng.uniform(0, 180), rng.uniform(0, 60), rng.uniform(50, 200))
        draw_object(img, other, (rng.uniform(0, W), rng.uniform(0, H)), rng.uniform(0.05, 0.12) * side,
                    rng.uniform(0, 360), grey, grey2, rng)
    # The object: the class's family in colours around the class's hue.
    hue = _class_hue(class_index) + rng.normal(0, 8)
    colour = _hsv_colour(hue, rng.uniform(150, 255), rng.uniform(140, 255))
    accent = _hsv_colour(hue + 90 + rng.normal(0, 10), rng.uniform(80, 220), rng.uniform(60, 230))
    size = rng.uniform(0.2, 0.42) * side
    cx = rng.uniform(0.25, 0.75) * W
    cy = rng.uniform(0.25, 0.75) * H
    draw_object(img, family, (cx, cy), size, rng.uniform(0, 360), colour, accent, rng)
    noisy = img.astype(np.float32) + rng.normal(0.0, 3.0, img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()


def _size(image_size: Sequence[int] | str) -> tuple[int, int]:
    if isinstance(image_size, str):  # --synthetic-arg image_size=96x128 arrives as text
        try:
            h, w = (int(v) for v in image_size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"image_size={image_size!r}: expected HxW (e.g. 96x128)") from None
        image_size = (h, w)
    H, W = int(image_size[0]), int(image_size[1])
    if H < 32 or W < 32:
        raise ConfigError(f"image_size={tuple(image_size)}: expected (H, W) of at least 32×32 px")
    return H, W


def generate_synthetic_imagenet(
    root: str | Path,
    seed: int = 0,
    num_train: int = 200,
    num_val: int = 40,
    num_classes: int = 10,
    image_size: tuple[int, int] | str = (96, 128),
    progress: bool = True,
) -> dict[str, Any]:
    """Write the synthetic ImageNet under ``root`` (see the module docstring); returns a summary.

    Args:
        root: output directory (created; files of the same names are replaced).
        seed: the only source of randomness.
        num_train / num_val: images per split, spread over the classes in turn.
        num_classes: class folders (1..1000).
        image_size: ``(H, W)`` of every image (or ``"HxW"``).

    Returns:
        ``{"root", "seed", "image_size", "classes": n, "class_names": [...],
        "splits": {split: {"images": n, "per_class": [n_0, ...]}}}``.
    """
    H, W = _size(image_size)
    if int(num_train) < 0 or int(num_val) < 0:
        raise ConfigError(f"num_train={num_train}, num_val={num_val}: expected counts ≥ 0")
    if not 1 <= int(num_classes) <= 1000:
        raise ConfigError(f"num_classes={num_classes}: expected 1..1000")
    num_classes = int(num_classes)
    root = Path(root)
    names = class_names(num_classes)
    summary: dict[str, Any] = {"root": str(root), "seed": seed, "image_size": [H, W], "classes": num_classes,
                               "class_names": names, "splits": {}}
    for split, n in (("train", int(num_train)), ("val", int(num_val))):
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        per_class = [0] * num_classes
        code = SPLIT_CODES[split]
        for i in tqdm(range(n), desc=f"synthetic imagenet {split}", disable=not progress, unit="img"):
            k = i % num_classes
            rgb = render_image(np.random.default_rng([seed, code, i]), k, (H, W))
            atomic_write_bytes(root / split / names[k] / f"{names[k]}_{i:06d}.JPEG", _encode_jpeg(rgb))
            per_class[k] += 1
        summary["splits"][split] = {"images": n, "per_class": per_class}
    return summary
