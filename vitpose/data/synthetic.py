"""The embedded synthetic COCO-format keypoint dataset of the smoke scale.

Renders small images of articulated "puppets" that face the camera, so that the same code path that
serves real COCO (annotation JSON, image folders, a person-detection file) can be exercised and learned
in minutes on a CPU. Layout written under ``root``::

    annotations/person_keypoints_train2017.json
    annotations/person_keypoints_val2017.json
    train2017/*.jpg   val2017/*.jpg
    person_detection_results/COCO_val2017_detections_AP_H_56_person.json

(:func:`generate_synthetic_coco_testdev` writes a test-dev stand-in: unlabelled images, their image
list and detections, in COCO test-dev's layout.)

Design for learnability (the smoke run must reach COCO AP ≥ 0.5 with a tiny ViT):
- every keypoint is a crisp disc whose colour depends on the joint *type* only (left and right
  shoulders look alike), so left/right is decided by geometry, which flip augmentation and flip test
  keep consistent; people face the camera (their left side on the image's right) with a face (eyes above
  the nose, ears on the sides) that shows the orientation;
- limbs, clothes and backgrounds use muted colours so they never look like a keypoint.
Realism the pipeline must handle: several people per image at varied sizes, poses and builds, mutual
occlusion and occluding objects (visibility 1), truncation at the border (visibility 0, ``(0, 0, 0)``),
small unlabelled people (``num_keypoints`` 0), crowd regions (``iscrowd`` 1), images without people,
and detections with jittered boxes, misses and false positives.

Determinism: everything about image ``i`` of a split comes from ``default_rng([seed, split, i])``, so
the same seed gives byte-identical JSON and JPEGs (on the same OpenCV build), independent of how many
images the other split has. The body model (:func:`sample_pose`) produces a superset of joints
(head top, neck, thorax, pelvis too) and markers are drawn for the keypoints of a
:class:`~vitpose.data.keypoints.KeypointMeta`: :func:`generate_synthetic_aic`,
:func:`generate_synthetic_mpii` and :func:`generate_synthetic_crowdpose` write the same scenes with the
dataset's own keypoints in its real layout and format (docs/DATA.md, "Smoke scale").
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from vitpose.data.formats import MPII_MAT_JOINTS
from vitpose.data.keypoints import AIC, COCO, CROWDPOSE, MPII, KeypointMeta
from vitpose.data.synthetic_imagenet import generate_synthetic_imagenet  # noqa: F401  (GENERATORS, prepare.py)
from vitpose.utils.errors import ConfigError, UserError
from vitpose.utils.io import atomic_write_bytes, atomic_write_text

SPLIT_CODES = {"train": 1, "val": 2, "test-dev": 3}   # part of every image's seed and of its image id
DET_FILE = "COCO_val2017_detections_AP_H_56_person.json"
_SHIFT = 4                              # OpenCV fixed-point bits: sub-pixel accurate drawing
_ONE = 1 << _SHIFT

# Saturated colour per joint *type* (RGB). Left and right share one colour on purpose (see above).
JOINT_TYPE_COLOURS: dict[str, tuple[int, int, int]] = {
    "nose": (255, 0, 0), "eye": (0, 110, 255), "ear": (255, 140, 0),
    "shoulder": (255, 235, 0), "elbow": (0, 210, 0), "wrist": (0, 235, 235),
    "hip": (255, 0, 255), "knee": (130, 40, 255), "ankle": (255, 90, 150),
    "head_top": (120, 255, 120), "neck": (255, 255, 255), "thorax": (200, 120, 60),
    "pelvis": (60, 160, 200),
}
# Marker radius per joint type, as a fraction of the person's height.
_MARKER_RADIUS = {"nose": 0.02, "eye": 0.018, "ear": 0.02}
_BODY_MARKER_RADIUS = 0.026
# Aliases between dataset keypoint names and the body model's joint names.
_JOINT_ALIASES = {"top_head": "head_top", "upper_neck": "neck"}


def joint_type(name: str) -> str:
    """``left_knee`` → ``knee``; midline joints are their own type."""
    name = _JOINT_ALIASES.get(name, name)
    for prefix in ("left_", "right_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


# ----------------------------------------------------------------------------------------------
# Body model
# ----------------------------------------------------------------------------------------------

def _rot(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def _limb_dir(side: int, angle_deg: float) -> np.ndarray:
    """Unit vector ``angle`` degrees away from straight down, outward for ``side`` (−1 = image left)."""
    t = math.radians(angle_deg)
    return np.array([side * math.sin(t), math.cos(t)])


def _sample_chain(rng: np.random.Generator, root: np.ndarray, side: int, lengths: tuple[float, float],
                  first: tuple[float, float], bend: tuple[float, float], midline_x: float,
                  margins: tuple[float, float], foreshorten: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A two-segment limb (shoulder→elbow→wrist or hip→knee→ankle) that stays on its own side of
    the body (``side · (x − midline) ≥ margin``), so that left/right stays a matter of geometry."""
    for _ in range(30):
        a = rng.uniform(*first)
        b = a + rng.uniform(*bend) * rng.choice([-1.0, 1.0])
        mid = root + lengths[0] * foreshorten * _limb_dir(side, a)
        end = mid + lengths[1] * _limb_dir(side, b)
        if side * (mid[0] - midline_x) >= margins[0] and side * (end[0] - midline_x) >= margins[1]:
            return mid, end
    # Rare fallback: hanging straight down beside the body.
    mid = root + lengths[0] * foreshorten * _limb_dir(side, 12.0)
    return mid, mid + lengths[1] * _limb_dir(side, 8.0)


def sample_pose(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], float]:
    """A frontal pose in body units (height ≈ 1, y down, pelvis at the origin).

    Returns ``(joints, head_radius)``: joints by name (COCO-17 names plus head_top, neck, thorax,
    pelvis), each an ``(x, y)`` array. The person's right side is at negative x (image left).
    """
    build = rng.uniform(0.85, 1.2)                       # shoulder/hip width: varied aspects
    lean = float(np.clip(rng.normal(0.0, 7.0), -18, 18))
    r_lean = _rot(lean)
    torso = 0.30 * rng.uniform(0.92, 1.08)
    j: dict[str, np.ndarray] = {"pelvis": np.zeros(2)}
    hip_half, sho_half = 0.075 * build, 0.12 * build
    for side, name in ((-1, "right"), (1, "left")):
        j[f"{name}_hip"] = np.array([side * hip_half, 0.0])
    j["neck"] = r_lean @ np.array([0.0, -torso])
    for side, name in ((-1, "right"), (1, "left")):
        j[f"{name}_shoulder"] = j["neck"] + r_lean @ np.array([side * sho_half, 0.025])
    j["thorax"] = 0.5 * (j["left_shoulder"] + j["right_shoulder"])

    tilt = lean + float(np.clip(rng.normal(0.0, 8.0), -20, 20))
    r_head = _rot(tilt)
    head_r = 0.072 * rng.uniform(0.9, 1.1)      # a slightly large head keeps the face readable
    head = j["neck"] + r_head @ np.array([0.0, -0.105])
    yaw = rng.uniform(-0.25, 0.25)                        # a slight turn of the face
    j["head_top"] = head + r_head @ np.array([0.0, -head_r])
    j["nose"] = head + r_head @ np.array([0.8 * yaw * head_r, 0.38 * head_r])
    for side, name in ((-1, "right"), (1, "left")):
        j[f"{name}_eye"] = head + r_head @ np.array([(side * 0.42 + 0.5 * yaw) * head_r, -0.2 * head_r])
        j[f"{name}_ear"] = head + r_head @ np.array([(side * 1.0 + 0.15 * yaw) * head_r, 0.05 * head_r])

    # Arms: mostly down, sometimes raised; elbows bend either way but hands stay on their side.
    arm_pose = rng.choice(3, p=[0.6, 0.28, 0.12])
    first = [(5.0, 45.0), (45.0, 150.0), (-8.0, 8.0)][arm_pose]
    midline = float(j["neck"][0])
    for side, name in ((-1, "right"), (1, "left")):
        j[f"{name}_elbow"], j[f"{name}_wrist"] = _sample_chain(
            rng, j[f"{name}_shoulder"], side, (0.17, 0.15), first, (0.0, 110.0), midline, (0.05, 0.03))
    # Legs: standing, striding or crouching (a foreshortened thigh gives a squatter box).
    crouch = rng.uniform(0.45, 0.8) if rng.random() < 0.15 else 1.0
    for side, name in ((-1, "right"), (1, "left")):
        j[f"{name}_knee"], j[f"{name}_ankle"] = _sample_chain(
            rng, j[f"{name}_hip"], side, (0.25, 0.24), (-3.0, 28.0), (0.0, 35.0), 0.0, (0.02, 0.02),
            foreshorten=crouch)

    # Whole-body rotation about the pelvis.
    r_body = _rot(float(np.clip(rng.normal(0.0, 8.0), -25, 25)))
    return {k: r_body @ v for k, v in j.items()}, head_r


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

def _muted_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.05, 0.45),
                  val: tuple[float, float] = (0.25, 0.85)) -> tuple[int, int, int]:
    """A low-saturation RGB colour: clothes, props and backgrounds never look like a marker."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]],
                   dtype=np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _fx(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


class _Layer:
    """One person drawn on black with a coverage mask, composited afterwards (premultiplied)."""

    def __init__(self, height: int, width: int) -> None:
        self.rgb = np.zeros((height, width, 3), np.uint8)
        self.alpha = np.zeros((height, width), np.uint8)

    def line(self, a: np.ndarray, b: np.ndarray, colour: Sequence[int], thickness: float) -> None:
        t = max(1, int(round(thickness)))
        for img, c in ((self.rgb, colour), (self.alpha, 255)):
            cv2.line(img, _fx(a), _fx(b), c, t, cv2.LINE_AA, _SHIFT)

    def disc(self, p: np.ndarray, radius: float, colour: Sequence[int],
             outline: Sequence[int] | None = None) -> None:
        r = int(round(max(radius, 1.0) * _ONE))
        for img, c in ((self.rgb, colour), (self.alpha, 255)):
            cv2.circle(img, _fx(p), r, c, -1, cv2.LINE_AA, _SHIFT)
        if outline is not None:
            cv2.circle(self.rgb, _fx(p), r, outline, 1, cv2.LINE_AA, _SHIFT)

    def polygon(self, pts: list[np.ndarray], colour: Sequence[int]) -> None:
        poly = np.array([_fx(p) for p in pts], np.int32)
        for img, c in ((self.rgb, colour), (self.alpha, 255)):
            cv2.fillConvexPoly(img, poly, c, cv2.LINE_AA, _SHIFT)

    def ellipse(self, p: np.ndarray, axes: tuple[float, float], angle: float,
                colour: Sequence[int]) -> None:
        ax = (int(round(max(axes[0], 1.0) * _ONE)), int(round(max(axes[1], 1.0) * _ONE)))
        for img, c in ((self.rgb, colour), (self.alpha, 255)):
            cv2.ellipse(img, _fx(p), ax, angle, 0, 360, c, -1, cv2.LINE_AA, _SHIFT)

    def composite(self, canvas: np.ndarray) -> np.ndarray:
        """Paint onto ``canvas`` (H, W, 3) uint8 in place; returns the (H, W) bool silhouette."""
        a = self.alpha.astype(np.float32)[..., None] / 255.0
        canvas[:] = np.clip(canvas * (1.0 - a) + self.rgb, 0, 255).astype(np.uint8)
        return self.alpha >= 128


@dataclass
class _Person:
    joints: dict[str, np.ndarray]   # image px
    height: float                   # px
    head_radius: float              # px
    labelled: bool                  # False: a small person annotated with num_keypoints 0


def _place(rng: np.random.Generator, height: float, pelvis: np.ndarray, labelled: bool) -> _Person:
    joints, head_r = sample_pose(rng)
    return _Person({k: pelvis + height * v for k, v in joints.items()}, height, head_r * height, labelled)


def draw_person(layer: _Layer, person: _Person, rng: np.random.Generator, marked: Sequence[str]
                ) -> np.ndarray:
    """Draw a puppet (legs, torso, head, arms) and a marker disc on each joint in ``marked``.

    Returns an (H, W) uint8 map holding ``k + 1`` where marker ``k`` is on top (0 elsewhere): a joint
    hidden under another of the person's own markers (a wrist in front of a hip) counts as occluded.
    """
    j, h = person.joints, person.height
    skin = _muted_colour(rng, (0.2, 0.5), (0.45, 0.9))
    shirt, trousers, shoes = _muted_colour(rng), _muted_colour(rng), _muted_colour(rng, val=(0.1, 0.4))
    build = rng.uniform(0.85, 1.15)
    for side in ("right", "left"):
        layer.line(j[f"{side}_hip"], j[f"{side}_knee"], trousers, 0.075 * h * build)
        layer.line(j[f"{side}_knee"], j[f"{side}_ankle"], trousers, 0.06 * h * build)
        foot = j[f"{side}_ankle"] + np.array([(1 if side == "left" else -1) * 0.02 * h, 0.015 * h])
        layer.ellipse(foot, (0.035 * h, 0.018 * h), 0.0, shoes)
    out = 0.012 * h
    layer.polygon([j["right_shoulder"] - [out, 0], j["left_shoulder"] + [out, 0],
                   j["left_hip"] + [1.5 * out, 0], j["right_hip"] - [1.5 * out, 0]], shirt)
    layer.line(j["neck"], j["neck"] + 0.4 * (j["head_top"] - j["neck"]), skin, 0.05 * h)
    for side in ("right", "left"):   # ears behind the head's outline
        layer.disc(j[f"{side}_ear"], 0.3 * person.head_radius, skin)
    head = j["head_top"] + (j["neck"] - j["head_top"]) * (person.head_radius / np.linalg.norm(
        j["neck"] - j["head_top"]))
    layer.disc(head, person.head_radius, skin)
    for side in ("right", "left"):
        layer.line(j[f"{side}_shoulder"], j[f"{side}_elbow"], shirt, 0.055 * h * build)
        layer.line(j[f"{side}_elbow"], j[f"{side}_wrist"], skin, 0.042 * h * build)
        fore = j[f"{side}_wrist"] - j[f"{side}_elbow"]
        hand = j[f"{side}_wrist"] + 0.045 * h * fore / (np.linalg.norm(fore) + 1e-6)
        layer.disc(hand, 0.025 * h, skin)
    top = np.zeros(layer.alpha.shape, np.uint8)
    for k, name in enumerate(marked):
        t = joint_type(name)
        radius = max(_MARKER_RADIUS.get(t, _BODY_MARKER_RADIUS) * h, 1.0)
        centre = j[_JOINT_ALIASES.get(name, name)]
        layer.disc(centre, radius, JOINT_TYPE_COLOURS[t], outline=(20, 20, 20))
        cv2.circle(top, _fx(centre), int(round(radius * _ONE)), k + 1, -1, cv2.LINE_8, _SHIFT)
    return top


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Muted gradient + smooth noise + a few props: (H, W, 3) uint8 RGB."""
    c0, c1 = np.array(_muted_colour(rng), np.float32), np.array(_muted_colour(rng), np.float32)
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    if rng.random() < 0.5:
        t = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    img = c0 * (1 - t) + c1 * t + np.zeros((height, width, 3), np.float32)
    # Smooth noise, mostly in brightness: coloured blotches could pass for markers.
    grid = (max(2, height // 24), max(2, width // 24))
    coarse = rng.normal(0.0, 12.0, size=(*grid, 1)) + rng.normal(0.0, 4.0, size=(*grid, 3))
    img += cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(2, 7)):
        colour = _muted_colour(rng)
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(10, width / 2), rng.uniform(10, height / 2)
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.ellipse(img, (int(x), int(y)), (int(w / 2), int(h / 2)), rng.uniform(0, 180), 0, 360,
                        colour, -1, cv2.LINE_AA)
    return img


def _occluder(rng: np.random.Generator, canvas: np.ndarray, box: tuple[float, float, float, float]
              ) -> np.ndarray:
    """A prop partly covering ``box`` (x1, y1, x2, y2); returns its (H, W) bool mask."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    w, h = rng.uniform(0.3, 0.7) * bw, rng.uniform(0.12, 0.3) * bh
    cx, cy = rng.uniform(x1, x2), rng.uniform(y1 + 0.2 * bh, y2)
    layer = _Layer(*canvas.shape[:2])
    if rng.random() < 0.5:
        layer.polygon([np.array(p) for p in ((cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2),
                                              (cx + w / 2, cy + h / 2), (cx - w / 2, cy + h / 2))],
                      _muted_colour(rng))
    else:
        layer.ellipse(np.array([cx, cy]), (w / 2, h / 2), rng.uniform(-30, 30), _muted_colour(rng))
    return layer.composite(canvas)


# ----------------------------------------------------------------------------------------------
# One image and its annotations
# ----------------------------------------------------------------------------------------------

@dataclass
class _Instance:
    """An annotated region of one image: a person (keypoints (K, 3)) or a crowd region."""

    mask: np.ndarray               # (H, W) bool silhouette, clipped to the image
    keypoints: np.ndarray          # (K, 3) x, y, v (COCO convention; (0, 0, 0) = not labelled)
    iscrowd: bool
    joints: dict[str, np.ndarray] | None = None   # labelled people: every body-model joint, image px


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _joint_box(person: _Person) -> np.ndarray:
    pts = np.stack(list(person.joints.values()))
    pad = 0.05 * person.height
    return np.array([*(pts.min(0) - pad), *(pts.max(0) + pad)])


def render_image(rng: np.random.Generator, image_size: tuple[int, int], meta: KeypointMeta = COCO,
                 max_people: int = 4) -> tuple[np.ndarray, list[_Instance]]:
    """Draw one scene. Returns the RGB image (H, W, 3) uint8 and its instances (persons and crowds).

    Visibility of a labelled keypoint: 0 outside the image, 1 when a later-drawn person or prop covers
    it, 2 otherwise.
    """
    H, W = image_size
    canvas = _background(rng, H, W)
    instances: list[_Instance] = []

    # Far away first: a crowd region of tiny people, small unlabelled people.
    if rng.random() < 0.12:
        cw, ch = rng.uniform(0.2, 0.35) * W, rng.uniform(0.15, 0.25) * H
        x0, y0 = rng.uniform(0, W - cw), rng.uniform(0, H - ch)
        union = np.zeros((H, W), bool)
        for _ in range(rng.integers(5, 10)):
            ph = rng.uniform(0.1, 0.17) * H
            p = _place(rng, ph, np.array([rng.uniform(x0, x0 + cw), rng.uniform(y0 + 0.5 * ph, y0 + ch)]),
                       False)
            layer = _Layer(H, W)
            draw_person(layer, p, rng, meta.keypoint_names)
            union |= layer.composite(canvas)
        instances.append(_Instance(union, np.zeros((meta.num_keypoints, 3)), True))
    people: list[_Person] = []
    for _ in range(rng.integers(1, 3) if rng.random() < 0.12 else 0):
        ph = rng.uniform(0.08, 0.13) * H
        people.append(_place(rng, ph, np.array([rng.uniform(0, W), rng.uniform(0.2 * H, H)]), False))

    # The labelled people: sizes vary; placements avoid heavy overlap; larger (nearer) drawn later.
    n = rng.choice(max_people + 1, p=_people_count_probs(max_people))
    boxes: list[np.ndarray] = []
    for _ in range(n):
        for _try in range(20):
            ph = rng.uniform(0.3, 0.9) * H
            # Pelvis placement allows truncation: up to ~30% of a person may leave the frame.
            pelvis = np.array([rng.uniform(-0.05 * W, 1.05 * W), rng.uniform(0.0, 1.05 * H)])
            cand = _place(rng, ph, pelvis, True)
            box = _joint_box(cand)
            if _inside_fraction(box, W, H) >= 0.7 and all(_box_iou(box, b) < 0.3 for b in boxes):
                people.append(cand)
                boxes.append(box)
                break
    people.sort(key=lambda p: p.height)

    owner = np.full((H, W), -1, np.int32)      # which person (or prop, -2) is in front at each pixel
    masks: list[np.ndarray] = []
    tops: list[np.ndarray] = []
    occluder_after = {int(rng.integers(0, len(people)))} if people and rng.random() < 0.3 else set()
    for i, person in enumerate(people):
        layer = _Layer(H, W)
        tops.append(draw_person(layer, person, rng, meta.keypoint_names))
        mask = layer.composite(canvas)
        owner[mask] = i
        masks.append(mask)
        if i in occluder_after:
            owner[_occluder(rng, canvas, tuple(_joint_box(person)))] = -2

    for i, person in enumerate(people):
        kpts = np.zeros((meta.num_keypoints, 3))
        if person.labelled:
            for k, name in enumerate(meta.keypoint_names):
                x, y = person.joints[_JOINT_ALIASES.get(name, name)]
                if 0 <= x <= W - 1 and 0 <= y <= H - 1:
                    px, py = int(round(x)), int(round(y))
                    front = owner[py, px] == i and tops[i][py, px] == k + 1
                    kpts[k] = (x, y, 2 if front else 1)
        if masks[i].any():
            instances.append(_Instance(masks[i], kpts, False, person.joints if person.labelled else None))
    # Sensor noise: perfectly flat colours would make the task unrealistically clean.
    noisy = canvas.astype(np.float32) + rng.normal(0.0, 3.0, canvas.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8), instances


def _people_count_probs(max_people: int) -> np.ndarray:
    """P(number of labelled people): some empty images, mostly 1–3 people."""
    w = np.array([0.06] + [1.0 / (1 + 0.5 * k) for k in range(max_people)])
    return w / w.sum()


def _inside_fraction(box: np.ndarray, width: int, height: int) -> float:
    ix = max(0.0, min(box[2], width) - max(box[0], 0.0))
    iy = max(0.0, min(box[3], height) - max(box[1], 0.0))
    return ix * iy / max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)


# ----------------------------------------------------------------------------------------------
# COCO records
# ----------------------------------------------------------------------------------------------

def _mask_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    x1, y1 = float(xs.min()), float(ys.min())
    return [x1, y1, float(xs.max()) - x1 + 1.0, float(ys.max()) - y1 + 1.0]


def _polygons(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        c = cv2.approxPolyDP(c, 1.0, True).reshape(-1, 2)
        if len(c) >= 3:
            polys.append([float(v) for v in c.reshape(-1)])
    return polys


def _uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE (column-major run lengths, starting with a run of zeros)."""
    flat = mask.T.reshape(-1).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _annotation(inst: _Instance, ann_id: int, image_id: int) -> dict[str, Any]:
    kpts = [round(float(v), 2) for v in inst.keypoints.reshape(-1)]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": int(inst.iscrowd),
        "bbox": _mask_box(inst.mask),
        "area": float(inst.mask.sum()),
        "segmentation": _uncompressed_rle(inst.mask) if inst.iscrowd else _polygons(inst.mask),
        "num_keypoints": int((inst.keypoints[:, 2] > 0).sum()),
        "keypoints": kpts,
    }


def synthetic_detections(rng: np.random.Generator, image_id: int, anns: list[dict[str, Any]],
                         image_size: tuple[int, int]) -> list[dict[str, Any]]:
    """A simulated person detector: jittered GT boxes with scores, misses, duplicates and false
    positives, in the released detection-file format."""
    H, W = image_size
    dets = []

    def emit(box: Sequence[float], score: float) -> None:
        x1, y1 = np.clip(box[0], 0, W - 1), np.clip(box[1], 0, H - 1)
        x2, y2 = np.clip(box[0] + box[2], 0, W - 1), np.clip(box[1] + box[3], 0, H - 1)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            dets.append({"image_id": image_id, "category_id": 1,
                         "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                         "score": round(float(score), 4)})

    for ann in anns:
        if ann["iscrowd"]:
            continue
        x, y, w, h = ann["bbox"]
        small = ann["area"] < 600
        if rng.random() < (0.35 if small else 0.03):
            continue                                           # missed
        cx, cy = x + w / 2 + rng.normal(0, 0.04) * w, y + h / 2 + rng.normal(0, 0.04) * h
        sw, sh = w * math.exp(rng.normal(0, 0.06)), h * math.exp(rng.normal(0, 0.06))
        score = rng.uniform(0.3, 0.8) if small else rng.uniform(0.6, 1.0)
        emit((cx - sw / 2, cy - sh / 2, sw, sh), score)
        if rng.random() < 0.1:                                # a duplicate that survived NMS
            emit((cx - sw / 2 + rng.normal(0, 0.15) * w, cy - sh / 2, sw * 0.8, sh * 0.9),
                 score * rng.uniform(0.2, 0.6))
    for _ in range(rng.poisson(0.5)):                         # false positives
        w, h = rng.uniform(20, 0.5 * W), rng.uniform(30, 0.8 * H)
        emit((rng.uniform(0, W - w), rng.uniform(0, H - h), w, h), rng.uniform(0.02, 0.45))
    return dets


# ----------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------

def _encode_jpeg(rgb: np.ndarray) -> bytes:
    # Full-resolution chroma (4:4:4): 4:2:0 subsampling washes out the small face markers' colour.
    params = [cv2.IMWRITE_JPEG_QUALITY, 92,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def _write_split(root: Path, split: str, seed: int, num_images: int, image_size: tuple[int, int],
                 max_people: int, progress: bool) -> tuple[dict[str, Any], list[dict[str, Any]], dict]:
    """Render and write one split's images; returns (COCO dict, detections, counts)."""
    code = SPLIT_CODES[split]
    images, annotations, detections = [], [], []
    counts = {"images": num_images, "persons": 0, "unlabelled_persons": 0, "crowd_regions": 0,
              "empty_images": 0, "visible_keypoints": 0, "occluded_keypoints": 0}
    for i in tqdm(range(num_images), desc=f"synthetic {split}", disable=not progress, unit="img"):
        rng = np.random.default_rng([seed, code, i])
        rgb, instances = render_image(rng, image_size, COCO, max_people)
        image_id = code * 1_000_000 + i + 1
        file_name = f"{image_id:012d}.jpg"
        atomic_write_bytes(root / f"{split}2017" / file_name, _encode_jpeg(rgb))
        images.append({"id": image_id, "file_name": file_name, "height": image_size[0],
                       "width": image_size[1]})
        anns = [_annotation(inst, image_id * 100 + k + 1, image_id) for k, inst in enumerate(instances)]
        annotations += anns
        for a in anns:
            v = np.asarray(a["keypoints"][2::3])
            counts["crowd_regions"] += a["iscrowd"]
            counts["persons"] += int(not a["iscrowd"] and a["num_keypoints"] > 0)
            counts["unlabelled_persons"] += int(not a["iscrowd"] and a["num_keypoints"] == 0)
            counts["visible_keypoints"] += int((v == 2).sum())
            counts["occluded_keypoints"] += int((v == 1).sum())
        counts["empty_images"] += int(not any(not a["iscrowd"] for a in anns))
        if split == "val":
            detections += synthetic_detections(np.random.default_rng([seed, code, i, 1]), image_id, anns,
                                               image_size)
    coco = {
        "info": {"description": f"ViTPose smoke-scale synthetic COCO keypoints ({split}, seed {seed})",
                 "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(COCO.keypoint_names),
                        "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton]}],
    }
    return coco, detections, counts


def generate_synthetic_coco(
    root: str | Path,
    seed: int = 0,
    num_train: int = 400,
    num_val: int = 100,
    image_size: tuple[int, int] = (256, 320),
    max_people: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the synthetic dataset in the COCO layout under ``root``; returns a summary.

    Args:
        root: output directory (created; existing files of the same names are replaced).
        seed: the only source of randomness.
        num_train / num_val: number of images per split.
        image_size: ``(H, W)`` of every image.
        max_people: most labelled people per image.

    Returns:
        ``{"root", "seed", "image_size", "splits": {split: counts}, "detections": n}``.
    """
    H, W = _check_params(num_train, num_val, image_size, max_people)
    root = Path(root)
    summary: dict[str, Any] = {"root": str(root), "seed": seed, "image_size": [H, W], "splits": {}}
    for split, n in (("train", num_train), ("val", num_val)):
        coco, dets, counts = _write_split(root, split, seed, n, (H, W), max_people, progress)
        atomic_write_text(root / "annotations" / f"person_keypoints_{split}2017.json", _dump(coco))
        summary["splits"][split] = counts
        if split == "val":
            atomic_write_text(root / "person_detection_results" / DET_FILE, _dump(dets))
            summary["detections"] = len(dets)
    return summary


def _check_params(num_train: int, num_val: int, image_size: Sequence[int] | str,
                  max_people: int) -> tuple[int, int]:
    """The generators' shared argument checks; returns ``(H, W)``."""
    if isinstance(image_size, str):        # --synthetic-arg image_size=256x320 arrives as text
        try:
            image_size = _parse_size(image_size)
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"image_size={image_size!r}: {e}") from None
    H, W = int(image_size[0]), int(image_size[1])
    if num_train < 0 or num_val < 0:
        raise ConfigError(f"num_train={num_train}, num_val={num_val}: expected counts ≥ 0")
    if H < 64 or W < 64:
        raise ConfigError(f"image_size={image_size}: expected (H, W) of at least 64×64 px")
    if not 1 <= max_people <= 20:
        raise ConfigError(f"max_people={max_people}: expected 1..20")
    return H, W


# ----------------------------------------------------------------------------------------------
# The same people in the native formats of AIC, MPII and CrowdPose
# ----------------------------------------------------------------------------------------------
#
# Every variant renders image i of a split from default_rng([seed, split code, i]) exactly as the COCO
# generator does, so the scenes and people are the COCO dataset's; only the drawn markers (the
# dataset's keypoints) and the files differ. None of them has crowd regions (the real datasets do not
# annotate any).

AIC_LAYOUT = {
    "train": ("annotations/aic_train.json", "ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902"),
    "val": ("annotations/aic_val.json",
            "ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911"),
}
CROWDPOSE_LAYOUT = {"train": "annotations/mmpose_crowdpose_trainval.json",
                    "val": "annotations/mmpose_crowdpose_test.json"}
CROWDPOSE_DET_FILE = "annotations/det_for_crowd_test_0.1_0.5.json"
MPII_LAYOUT = {"train": "annotations/mpii_train.json", "val": "annotations/mpii_val.json"}
MPII_GT_FILE = "annotations/mpii_gt_val.mat"


def _scenes(split: str, seed: int, num_images: int, image_size: tuple[int, int], max_people: int,
            meta: KeypointMeta, progress: bool, what: str):
    """``(i, image_id, rgb, people)`` of a split: the COCO generator's scenes drawn with ``meta``'s
    markers; crowd regions left out."""
    code = SPLIT_CODES[split]
    for i in tqdm(range(num_images), desc=f"synthetic {what} {split}", disable=not progress, unit="img"):
        rng = np.random.default_rng([seed, code, i])
        rgb, instances = render_image(rng, image_size, meta, max_people)
        yield i, code * 1_000_000 + i + 1, rgb, [inst for inst in instances if not inst.iscrowd]


def _new_counts(num_images: int) -> dict[str, int]:
    return {"images": num_images, "persons": 0, "unlabelled_persons": 0, "empty_images": 0,
            "visible_keypoints": 0, "occluded_keypoints": 0}


def _count(counts: dict[str, int], keypoints: np.ndarray) -> None:
    """Add one person ((K, 3) keypoints) to the split's counts."""
    labelled = int((keypoints[:, 2] > 0).sum())
    counts["persons" if labelled else "unlabelled_persons"] += 1
    counts["visible_keypoints"] += int((keypoints[:, 2] == 2).sum())
    counts["occluded_keypoints"] += int((keypoints[:, 2] == 1).sum())


def _categories(meta: KeypointMeta) -> list[dict[str, Any]]:
    return [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(meta.keypoint_names),
             "skeleton": [[a + 1, b + 1] for a, b in meta.skeleton]}]


def crowd_index(keypoints: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]) -> float:
    """CrowdPose's crowd index of an image: the mean over its people of N_b / N_a, with N_a the
    person's labelled joints and N_b the labelled joints of the other people inside the person's box
    ``[x, y, w, h]``. 0 for an image without labelled people."""
    ratios = []
    for i, (kp, (x, y, w, h)) in enumerate(zip(keypoints, boxes)):
        n_a = int((kp[:, 2] > 0).sum())
        if n_a == 0:
            continue
        n_b = 0
        for j, other in enumerate(keypoints):
            if j == i:
                continue
            lab = other[other[:, 2] > 0]
            n_b += int(((lab[:, 0] >= x) & (lab[:, 0] <= x + w) & (lab[:, 1] >= y) & (lab[:, 1] <= y + h)).sum())
        ratios.append(n_b / n_a)
    return float(np.mean(ratios)) if ratios else 0.0


def generate_synthetic_aic(
    root: str | Path,
    seed: int = 0,
    num_train: int = 400,
    num_val: int = 100,
    image_size: tuple[int, int] = (256, 320),
    max_people: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """The synthetic people in AIC's OpenMMLab layout (14 keypoints), under ``root``::

        annotations/aic_{train,val}.json
        ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902/<40 hex>.jpg
        ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911/<40 hex>.jpg

    Like OpenMMLab's converted files, annotations carry ``id``, ``image_id``, ``category_id``, ``bbox``,
    ``keypoints`` (COCO visibility convention) and ``num_keypoints`` but no ``iscrowd`` and no ``area``.
    Arguments and return value as :func:`generate_synthetic_coco` (no detections: AIC is evaluated on
    its ground-truth boxes).
    """
    H, W = _check_params(num_train, num_val, image_size, max_people)
    root = Path(root)
    summary: dict[str, Any] = {"root": str(root), "seed": seed, "image_size": [H, W], "splits": {}}
    for split, n in (("train", num_train), ("val", num_val)):
        ann_rel, img_rel = AIC_LAYOUT[split]
        images, annotations, counts = [], [], _new_counts(n)
        for i, image_id, rgb, people in _scenes(split, seed, n, (H, W), max_people, AIC, progress, "aic"):
            file_name = hashlib.sha1(f"vitpose-synthetic-aic/{seed}/{split}/{i}".encode()).hexdigest() + ".jpg"
            atomic_write_bytes(root / img_rel / file_name, _encode_jpeg(rgb))
            images.append({"id": image_id, "file_name": file_name, "height": H, "width": W})
            for k, inst in enumerate(people):
                ann = _annotation(inst, image_id * 100 + k + 1, image_id)
                annotations.append({key: ann[key] for key in
                                    ("id", "image_id", "category_id", "bbox", "num_keypoints", "keypoints")})
                _count(counts, inst.keypoints)
            counts["empty_images"] += int(not people)
        atomic_write_text(root / ann_rel, _dump({
            "info": {"description": f"ViTPose smoke-scale synthetic AIC keypoints ({split}, seed {seed})"},
            "images": images, "annotations": annotations, "categories": _categories(AIC)}))
        summary["splits"][split] = counts
    return summary


def generate_synthetic_crowdpose(
    root: str | Path,
    seed: int = 0,
    num_train: int = 400,
    num_val: int = 100,
    image_size: tuple[int, int] = (256, 320),
    max_people: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """The synthetic people in CrowdPose's OpenMMLab layout (14 keypoints), under ``root``::

        annotations/mmpose_crowdpose_trainval.json     (num_train images)
        annotations/mmpose_crowdpose_test.json         (num_val images)
        annotations/det_for_crowd_test_0.1_0.5.json    (person detections of the test images)
        images/<image id>.jpg                          (both splits)

    Every image carries ``crowdIndex`` (:func:`crowd_index`); annotations have ``iscrowd`` 0 and
    ``num_keypoints`` but no ``area`` (CrowdPose's OKS area is 0.53 · w · h of the box). Arguments as
    :func:`generate_synthetic_coco`; the summary also holds ``detections`` and per-split
    ``crowd_levels`` (images with crowd index < 0.2, < 0.8, ≥ 0.8).
    """
    H, W = _check_params(num_train, num_val, image_size, max_people)
    root = Path(root)
    summary: dict[str, Any] = {"root": str(root), "seed": seed, "image_size": [H, W], "splits": {}}
    for split, n in (("train", num_train), ("val", num_val)):
        images, annotations, detections, counts = [], [], [], _new_counts(n)
        levels = {"easy": 0, "medium": 0, "hard": 0}
        code = SPLIT_CODES[split]
        for i, image_id, rgb, people in _scenes(split, seed, n, (H, W), max_people, CROWDPOSE, progress,
                                                "crowdpose"):
            file_name = f"{image_id}.jpg"
            atomic_write_bytes(root / "images" / file_name, _encode_jpeg(rgb))
            anns = [_annotation(inst, image_id * 100 + k + 1, image_id) for k, inst in enumerate(people)]
            index = crowd_index([inst.keypoints for inst in people], [a["bbox"] for a in anns])
            levels["easy" if index < 0.2 else "medium" if index < 0.8 else "hard"] += 1
            images.append({"id": image_id, "file_name": file_name, "height": H, "width": W,
                           "crowdIndex": round(index, 4)})
            for ann, inst in zip(anns, people):
                annotations.append({key: ann[key] for key in ("id", "image_id", "category_id", "iscrowd",
                                                              "bbox", "num_keypoints", "keypoints")})
                _count(counts, inst.keypoints)
            counts["empty_images"] += int(not people)
            if split == "val":
                detections += synthetic_detections(np.random.default_rng([seed, code, i, 1]), image_id,
                                                   anns, (H, W))
        atomic_write_text(root / CROWDPOSE_LAYOUT[split], _dump({
            "info": {"description": f"ViTPose smoke-scale synthetic CrowdPose keypoints ({split}, seed {seed})"},
            "images": images, "annotations": annotations, "categories": _categories(CROWDPOSE)}))
        summary["splits"][split] = {**counts, "crowd_levels": levels}
        if split == "val":
            atomic_write_text(root / CROWDPOSE_DET_FILE, _dump(detections))
            summary["detections"] = len(detections)
    return summary


def _mpii_head_box(joints: dict[str, np.ndarray]) -> list[float]:
    """A square head box ``x1, y1, x2, y2`` (0-based px) spanning head top to neck, centred between
    them: the part of the person MPII's annotated head rectangles cover."""
    top, neck = joints["head_top"], joints["neck"]
    centre, half = (top + neck) / 2.0, float(np.linalg.norm(top - neck)) / 2.0
    return [float(centre[0] - half), float(centre[1] - half), float(centre[0] + half), float(centre[1] + half)]


def write_mpii_gt_mat(path: str | Path, joints_1based: np.ndarray, visible: np.ndarray,
                      head_boxes_1based: np.ndarray) -> None:
    """Write ``mpii_gt_val.mat`` in the structure of the real file (atomically).

    Args:
        joints_1based: (N, 16, 2) ground-truth joints, MATLAB (1-based) pixels.
        visible: (N, 16) 1 where the joint is annotated.
        head_boxes_1based: (N, 4) head boxes ``x1, y1, x2, y2`` (1-based).

    Variables: ``pos_gt_src`` (16, 2, N), ``jnt_missing`` (16, N), ``headboxes_src`` (2, 2, N) with
    ``[0]`` the top-left and ``[1]`` the bottom-right corner, ``dataset_joints`` a 1 × 16 cell of names.
    """
    from scipy.io import savemat

    joints_1based = np.asarray(joints_1based, np.float64).reshape(-1, len(MPII_MAT_JOINTS), 2)
    n = len(joints_1based)
    boxes = np.asarray(head_boxes_1based, np.float64).reshape(n, 4)
    names = np.empty((1, len(MPII_MAT_JOINTS)), dtype=object)
    names[0, :] = list(MPII_MAT_JOINTS)
    buf = io.BytesIO()
    savemat(buf, {
        "dataset_joints": names,
        "jnt_missing": (1 - (np.asarray(visible).reshape(n, -1) > 0)).astype(np.float64).T,
        "pos_gt_src": joints_1based.transpose(1, 2, 0),
        "headboxes_src": boxes.reshape(n, 2, 2).transpose(1, 2, 0),
    })
    atomic_write_bytes(path, buf.getvalue())


def generate_synthetic_mpii(
    root: str | Path,
    seed: int = 0,
    num_train: int = 400,
    num_val: int = 100,
    image_size: tuple[int, int] = (256, 320),
    max_people: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """The synthetic people in MPII's OpenMMLab layout (16 keypoints), under ``root``::

        annotations/mpii_{train,val}.json    lists of {image, center, scale, joints, joints_vis}
        annotations/mpii_gt_val.mat          the val ground truth PCKh is computed against
        images/<9-digit image id>.jpg        (both splits)

    One entry per person with at least one labelled joint; joints and center are MATLAB (1-based)
    pixels, ``joints_vis`` 1 where labelled, unlabelled joints ``[-1, -1]``. ``scale`` is the longer
    side of the person's box / 200 and ``center`` the box centre raised by ``15 · scale`` px, so that
    mmpose's box rule (``vitpose.data.mpii.mpii_box``) gives back the box. The ``.mat`` holds the
    val entries in file order with square head boxes from head top to neck. Arguments and return
    value as :func:`generate_synthetic_coco`.
    """
    H, W = _check_params(num_train, num_val, image_size, max_people)
    root = Path(root)
    summary: dict[str, Any] = {"root": str(root), "seed": seed, "image_size": [H, W], "splits": {}}
    for split, n in (("train", num_train), ("val", num_val)):
        entries, heads, counts = [], [], _new_counts(n)
        for i, image_id, rgb, people in _scenes(split, seed, n, (H, W), max_people, MPII, progress, "mpii"):
            file_name = f"{image_id:09d}.jpg"
            atomic_write_bytes(root / "images" / file_name, _encode_jpeg(rgb))
            people = [p for p in people if (p.keypoints[:, 2] > 0).any()]
            for inst in people:
                x, y, w, h = _mask_box(inst.mask)
                scale = max(w, h) / 200.0
                vis = inst.keypoints[:, 2] > 0
                joints = np.where(vis[:, None], inst.keypoints[:, :2] + 1.0, -1.0)
                entries.append({
                    "joints_vis": [int(v) for v in vis],
                    "joints": [[round(float(a), 2), round(float(b), 2)] for a, b in joints],
                    "image": file_name,
                    "scale": round(scale, 6),
                    "center": [round(x + w / 2 + 1.0, 2), round(y + h / 2 - 15.0 * scale + 1.0, 2)],
                })
                heads.append([v + 1.0 for v in _mpii_head_box(inst.joints)])
                _count(counts, inst.keypoints)
            counts["empty_images"] += int(not people)
        atomic_write_text(root / MPII_LAYOUT[split], _dump(entries))
        if split == "val":
            write_mpii_gt_mat(root / MPII_GT_FILE,
                              np.array([e["joints"] for e in entries], np.float64).reshape(-1, 16, 2),
                              np.array([e["joints_vis"] for e in entries]).reshape(-1, 16),
                              np.array(heads, np.float64).reshape(-1, 4))
        summary["splits"][split] = counts
    return summary


# ----------------------------------------------------------------------------------------------
# A test-dev stand-in: unlabelled images, their image list and detections (Table 10's submission)
# ----------------------------------------------------------------------------------------------

TESTDEV_LAYOUT = {"image_info": "annotations/image_info_test-dev2017.json", "images": "test2017",
                  "detections": "person_detection_results/COCO_test-dev2017_detections_AP_H_609_person.json"}


def generate_synthetic_coco_testdev(
    root: str | Path,
    seed: int = 0,
    num_train: int = 0,
    num_val: int = 24,
    image_size: tuple[int, int] = (256, 320),
    max_people: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """COCO test-dev's layout with synthetic scenes, under ``root``: ``num_val`` images (the smoke
    scale passes every generator ``num_train`` / ``num_val``; test-dev has no training split, so
    ``num_train`` is unused)::

        annotations/image_info_test-dev2017.json     images and categories, no annotations
        test2017/*.jpg
        person_detection_results/COCO_test-dev2017_detections_AP_H_609_person.json

    As on the real test-dev, the people's keypoints are not written anywhere: only the evaluation
    server (here: nobody) could score a submission. Detections come from :func:`synthetic_detections`.
    """
    H, W = _check_params(num_train, num_val, image_size, max_people)
    root = Path(root)
    code = SPLIT_CODES["test-dev"]
    images, detections = [], []
    for i in tqdm(range(num_val), desc="synthetic test-dev", disable=not progress, unit="img"):
        rng = np.random.default_rng([seed, code, i])
        rgb, instances = render_image(rng, (H, W), COCO, max_people)
        image_id = code * 1_000_000 + i + 1
        file_name = f"{image_id:012d}.jpg"
        atomic_write_bytes(root / TESTDEV_LAYOUT["images"] / file_name, _encode_jpeg(rgb))
        images.append({"id": image_id, "file_name": file_name, "height": H, "width": W})
        anns = [_annotation(inst, image_id * 100 + k + 1, image_id) for k, inst in enumerate(instances)]
        detections += synthetic_detections(np.random.default_rng([seed, code, i, 1]), image_id, anns, (H, W))
    atomic_write_text(root / TESTDEV_LAYOUT["image_info"], _dump({
        "info": {"description": f"ViTPose smoke-scale synthetic COCO test-dev image list (seed {seed})"},
        "licenses": [], "images": images,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}))
    atomic_write_text(root / TESTDEV_LAYOUT["detections"], _dump(detections))
    return {"root": str(root), "seed": seed, "image_size": [H, W],
            "splits": {"test-dev": {"images": num_val}}, "detections": len(detections)}


GENERATORS = {"coco": generate_synthetic_coco, "coco-testdev": generate_synthetic_coco_testdev,
              "aic": generate_synthetic_aic,
              "mpii": generate_synthetic_mpii, "crowdpose": generate_synthetic_crowdpose,
              # Not a keypoint dataset: class folders of non-person images (MAE pre-training, Table 3);
              # takes num_classes instead of max_people.
              "imagenet": generate_synthetic_imagenet}


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 256x320), got {text!r}") from None
    return h, w


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitpose.data.synthetic",
                                     description="Write the synthetic keypoint dataset in a dataset's "
                                                 "native format (default COCO).")
    parser.add_argument("--root", required=True, help="output directory")
    parser.add_argument("--dataset", choices=sorted(GENERATORS), default="coco",
                        help="format and keypoints to write (default: coco)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=400)
    parser.add_argument("--num-val", type=int, default=100)
    parser.add_argument("--image-size", type=_parse_size, default=None,
                        help="HxW (default: the generator's, 256x320; imagenet 96x128)")
    parser.add_argument("--max-people", type=int, default=4, help="keypoint datasets only")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        kwargs = {"seed": args.seed, "num_train": args.num_train, "num_val": args.num_val,
                  "progress": not args.no_progress}
        if args.image_size is not None:
            kwargs["image_size"] = args.image_size
        if args.dataset != "imagenet":
            kwargs["max_people"] = args.max_people
        summary = GENERATORS[args.dataset](args.root, **kwargs)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
