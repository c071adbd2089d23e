"""MAE pre-training data (ViTPose §3.3, Table 3): an index of each image set and the dataset reading it.

The four sets of Table 3 and the datasets each is built from (:data:`SET_SOURCES`):

==================  ====================  =================================================================
set                 sources               entries
==================  ====================  =================================================================
``imagenet-1k``     imagenet              every image of ``train/<class>/`` (paper: 1M)
``coco-crop``       coco                  one crop per person of COCO train (paper: 150K)
``coco+aic-crop``   coco, aic             one crop per person of COCO train and AIC train (paper: 500K)
``coco+aic-nocrop`` coco, aic             every whole train image with at least one person (paper: 300K)
==================  ====================  =================================================================

:func:`build_index` turns the annotation files (never the images: their sizes come from the
annotations' ``images[].width/height``) into an *index document*, which :func:`write_index` stores
atomically as JSON (``stages.pretrain_data`` is the DAG step) and :class:`PretrainImageDataset` reads::

    {"schema": "vitpose-pretrain-index/1", "set": "coco-crop",
     "crop": {"padding": 1.25, "aspect_ratio": 0.75, "min_size": 0.0},     # null for imagenet-1k
     "sources": {"coco": {"ann": ..., "images": ...}},                     # what it was built from
     "counts": {"images": N, "coco": N, "coco_annotations": A, "coco_source_images": I},
     "entries": [["<images>/<file_name>", [x, y, w, h]], ...]}             # box null: the whole image

Image paths are stored as given (``os.path.join(images, file_name)``): relative ones are read relative
to the working directory of the process that reads the index (the repository root in the DAG). Boxes
are whole pixels ``[x, y, w, h]`` (column ``x`` to ``x + w - 1``), inside the image.

Choices the paper leaves open, and what is done here
----------------------------------------------------
*Which persons* (``coco-crop``, ``coco+aic-crop``). The paper says "person instances cropped from the
training set"; its 150K for COCO is the count of the top-down training instances, so a person is used
under the same rule as top-down finetuning (``vitpose.download.validate.is_training_instance``): not
crowd (``iscrowd`` 0), ``num_keypoints`` > 0 (labelled joints counted where the key is missing, as in
OpenMMLab's AIC files), category person, and a box ``bbox = [x, y, w, h]`` with w, h > 0 that keeps a
positive size after clipping to the image. :class:`CropRule` ``min_size`` can in addition drop boxes
whose shorter side (of the annotated box) is below that many pixels; the default 0 drops none. With
min_size 0, COCO train2017 has 149,813 such persons (REFERENCE §3; the manifest's ``train_instances``)
— the paper's "150K". AIC train (210,000 images in the release; about 378K annotated people are
expected, a figure not checked here against OpenMMLab's ``aic_train.json``) brings the sum to the
paper's "500K", a rounded number: the index reports the measured counts (``counts``), not the paper's.

*The crop* of a person. The paper does not say how crops are cut. Here it is the finetuning crop of the
top-down pipeline (``vitpose.data.dataset.TopDownDataset`` without augmentation): the box clipped to
the image (x2 ≤ W − 1, as the top-down loader clips it), its centre and size × ``padding`` (1.25),
widened to ``aspect_ratio`` w/h (0.75: the 192×256 input), then clipped to the image ``[0, W] × [0, H]``
(nothing outside the image is padded in: MAE reconstructs real pixels only) and rounded to whole pixels
(half up). A clipped crop no longer has the 0.75 aspect; the RandomResizedCrop that follows changes
the aspect anyway.

*Whole images* (``coco+aic-nocrop``). "Without cropping": every train image holding at least one person
that the rule above accepts (images without people are left out, as the crop sets leave them out), the
whole image as the entry. The paper's "300K" is rounded too (AIC's 210K images plus the COCO images with
people); the index reports the measured count.

*ImageNet-1k*: the class-folder layout ``train/<class>/*`` with the suffixes .jpg, .jpeg, .png in any
case (ImageNet's are .JPEG), class folders and files sorted by name: a deterministic order.

*Order*: sources in :data:`SET_SOURCES` order (COCO before AIC); within a COCO-style file, images in the
order of its ``images`` list and each image's annotations in file order.

*Augmentation* (:class:`PretrainImageDataset`): MAE's (He et al. 2022, its released ``main_pretrain.py``):
``RandomResizedCrop(input_size, scale=(0.2, 1.0), interpolation=BICUBIC)`` then
``RandomHorizontalFlip()`` then ImageNet normalisation. The parameter search is torchvision's algorithm
(:func:`random_resized_crop_params`) drawn from a numpy Generator; the resize is Pillow's BICUBIC on
uint8 RGB — what torchvision does to the PIL images MAE loads, antialiased when shrinking, its output
already clipped to [0, 255] — so only the random draws differ from the reference implementation.
The person crop, when the entry has one, is cut first and the RandomResizedCrop is taken inside it.
Every draw comes from ``sample_rng(seed, epoch, index)`` of the item's :class:`SampleKey`: a sample's
pixels depend on (seed, epoch, index) only, not on the worker or the order, which exact mid-epoch
resume relies on.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vitpose.config import PRETRAIN_SETS, PRETRAIN_SOURCES
from vitpose.data.dataset import SampleKey
from vitpose.data.formats import PERSON_CATEGORY_ID, check_coco_annotation, fill_coco_defaults
from vitpose.data.image_io import read_image_bgr
from vitpose.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    bbox_xyxy_to_center_scale,
    fix_aspect_ratio,
    sample_rng,
)
from vitpose.utils.errors import ConfigError, DataError
from vitpose.utils.io import atomic_write_text

SCHEMA = "vitpose-pretrain-index/1"
SET_SOURCES = PRETRAIN_SOURCES  # the sets and their sources are declared once, in vitpose.config
# The keys each source of build_index's `sources` must have.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {"coco": ("ann", "images"), "aic": ("ann", "images"),
                                           "imagenet": ("train",)}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # compared lower-case: ImageNet's .JPEG counts
_CROP_SETS = ("coco-crop", "coco+aic-crop")


@dataclass
class CropRule:
    """Which persons a pose set uses and how a person crop is cut (see the module docstring).

    padding: the box is enlarged by this factor (top-down finetuning: 1.25).
    aspect_ratio: the box is widened to this w / h before padding (0.75: the 192×256 finetuning crop).
    min_size: persons whose annotated box has a shorter side below this (pixels) are not used.
    """

    padding: float = 1.25
    aspect_ratio: float = 0.75
    min_size: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.padding, (int, float)) and self.padding >= 1.0):
            raise ConfigError(f"crop padding={self.padding!r}: expected a number ≥ 1")
        if not (isinstance(self.aspect_ratio, (int, float)) and self.aspect_ratio > 0):
            raise ConfigError(f"crop aspect_ratio={self.aspect_ratio!r}: expected a positive number (w / h)")
        if not (isinstance(self.min_size, (int, float)) and self.min_size >= 0):
            raise ConfigError(f"crop min_size={self.min_size!r}: expected a number ≥ 0 (pixels)")
        self.padding, self.aspect_ratio, self.min_size = (float(self.padding), float(self.aspect_ratio),
                                                          float(self.min_size))


# ------------------------------------------------------------------------------------------ the rule
def person_is_used(ann: Mapping[str, Any], width: float, height: float, rule: CropRule) -> bool:
    """Whether a (defaults-filled) COCO-style annotation is a person the pose sets use.

    Not crowd, person category, ``num_keypoints`` > 0, box w, h > 0 and positive after clipping to the
    image (x2 ≤ W − 1, y2 ≤ H − 1, the top-down filter), shorter side of the annotated box ≥ min_size.
    """
    if ann.get("iscrowd", 0) or ann.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID:
        return False
    if ann.get("num_keypoints", 0) <= 0:
        return False
    x, y, w, h = (float(v) for v in ann["bbox"])
    if not (w > 0 and h > 0) or min(w, h) < rule.min_size:
        return False
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(width) - 1, x + w), min(float(height) - 1, y + h)
    return x2 > x1 and y2 > y1


def person_crop(bbox: Sequence[float], width: int, height: int, rule: CropRule) -> list[int]:
    """The crop ``[x, y, w, h]`` (whole pixels, inside the image) of a person box ``[x, y, w, h]``.

    The box is clipped to the image as the top-down loader clips it, centre and size × padding, widened
    to the aspect ratio, clipped to ``[0, W] × [0, H]`` and rounded half up; at least 1×1 px.
    """
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = np.clip(x, 0, width - 1), np.clip(y, 0, height - 1)
    x2, y2 = np.clip(x + w, 0, width - 1), np.clip(y + h, 0, height - 1)
    center, scale = bbox_xyxy_to_center_scale(np.array([x1, y1, x2, y2]), rule.padding)
    sw, sh = (float(v) for v in fix_aspect_ratio(scale, rule.aspect_ratio))
    cx, cy = float(center[0]), float(center[1])

    def edges(c: float, s: float, size: int) -> tuple[int, int]:
        lo = min(max(math.floor(c - s / 2 + 0.5), 0), size - 1)
        hi = min(max(math.floor(c + s / 2 + 0.5), lo + 1), size)
        return lo, hi

    (ax, bx), (ay, by) = edges(cx, sw, int(width)), edges(cy, sh, int(height))
    return [ax, ay, bx - ax, by - ay]


# ------------------------------------------------------------------------------------------ building
def _load_annotations(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: annotation file is a directory; expected a COCO-style JSON file") from None
    except OSError as exc:
        raise DataError(f"{path}: annotation file cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: annotation file is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path}: expected a COCO-style object with `images` and `annotations` lists")
    return data


def _image_names(folder: str, needed_by: str) -> set[str]:
    """The file names in an image folder; DataError when it is missing or holds no file."""
    try:
        with os.scandir(folder) as it:
            names = {e.name for e in it if e.is_file()}
    except FileNotFoundError:
        raise DataError(f"{folder}: image folder not found (needed by {needed_by})") from None
    except NotADirectoryError:
        raise DataError(f"{folder}: not a directory; expected the image folder of {needed_by}") from None
    except OSError as exc:
        raise DataError(f"{folder}: image folder cannot be read ({exc.strerror or exc})") from None
    if not names:
        raise DataError(f"{folder}: empty image folder (no image files; needed by {needed_by})")
    return names


def _pose_entries(source: str, ann_path: str, img_dir: str, rule: CropRule, crop: bool
                  ) -> tuple[list[list[Any]], dict[str, int]]:
    """Entries of one COCO-style source: one per used person (crop) or per image with one (nocrop)."""
    data = _load_annotations(ann_path)
    images: dict[Any, dict[str, Any]] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not all(k in im for k in ("id", "file_name", "width", "height")):
            raise DataError(f"{ann_path}: images[{i}] must have id, file_name, width and height")
        if not all(isinstance(im[k], (int, float)) and im[k] > 0 for k in ("width", "height")):
            raise DataError(f"{ann_path}: images[{i}] (id {im['id']}) has size {im['width']!r}×"
                            f"{im['height']!r}; expected positive numbers")
        images[im["id"]] = im
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for i, ann in enumerate(data["annotations"]):
        check_coco_annotation(ann, i, ann_path)
        if ann["image_id"] not in images:
            raise DataError(f"{ann_path}: annotation #{i} (id {ann['id']}) refers to image id "
                            f"{ann['image_id']!r}, which is not in `images`")
        by_image.setdefault(ann["image_id"], []).append(fill_coco_defaults(ann))
    entries: list[list[Any]] = []
    names: list[str] = []  # the images the entries read
    used_images = 0
    for im in data["images"]:
        w, h = im["width"], im["height"]
        persons = [a for a in by_image.get(im["id"], []) if person_is_used(a, w, h, rule)]
        if not persons:
            continue
        used_images += 1
        path = os.path.join(img_dir, im["file_name"])
        names.append(im["file_name"])
        if crop:
            entries += [[path, person_crop(a["bbox"], int(w), int(h), rule)] for a in persons]
        else:
            entries.append([path, None])
    on_disk = _image_names(img_dir, ann_path)
    missing = sorted(n for n in set(names) if n not in on_disk and not os.path.isfile(os.path.join(img_dir, n)))
    if missing:
        raise DataError(f"{img_dir}: {len(missing):,} image(s) named by {ann_path} are missing from the "
                        f"image folder, e.g. {', '.join(missing[:3])}")
    if not entries:
        raise DataError(f"{ann_path}: no person passes the rule (not crowd, num_keypoints > 0, box w, h > 0 "
                        f"inside the image, shorter side ≥ min_size {rule.min_size:g} px); "
                        f"{len(data['annotations']):,} annotations in {len(images):,} images")
    counts = {source: len(entries), f"{source}_annotations": len(data["annotations"]),
              f"{source}_source_images": used_images}
    return entries, counts


def _imagenet_entries(train_dir: str) -> tuple[list[list[Any]], dict[str, int]]:
    """Every image of ``train/<class>/``, classes and files sorted by name."""
    try:
        with os.scandir(train_dir) as it:
            classes = sorted(e.name for e in it if e.is_dir())
    except FileNotFoundError:
        raise DataError(f"{train_dir}: ImageNet train folder not found (expected train/<class>/*.JPEG)") from None
    except NotADirectoryError:
        raise DataError(f"{train_dir}: not a directory; expected ImageNet's train folder of class "
                        f"folders") from None
    if not classes:
        raise DataError(f"{train_dir}: empty image folder (no class folders; expected train/<class>/*.JPEG)")
    entries: list[list[Any]] = []
    for cls in classes:
        folder = os.path.join(train_dir, cls)
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower()
                           in IMAGE_SUFFIXES)
        entries += [[os.path.join(folder, n), None] for n in names]
    if not entries:
        raise DataError(f"{train_dir}: empty image folder (no {'/'.join(IMAGE_SUFFIXES)} files in its "
                        f"{len(classes):,} class folders)")
    return entries, {"imagenet": len(entries), "imagenet_classes": len(classes)}


def _check_sources(set_name: str, sources: Mapping[str, Mapping[str, str]]) -> None:
    if set_name not in SET_SOURCES:
        raise ConfigError(f"unknown pre-training set {set_name!r}; expected one of {', '.join(PRETRAIN_SETS)}")
    needed = SET_SOURCES[set_name]
    missing = [s for s in needed if s not in sources or sources[s] is None]
    if missing:
        raise ConfigError(f"pre-training set {set_name!r} is built from {' + '.join(needed)}; missing: "
                          + ", ".join(f"{s} ({', '.join(SOURCE_KEYS[s])})" for s in missing))
    for s in needed:
        lacking = [k for k in SOURCE_KEYS[s] if not sources[s].get(k)]
        if lacking:
            raise ConfigError(f"pre-training set {set_name!r}: source {s} lacks {', '.join(lacking)} "
                              f"(expected {', '.join(SOURCE_KEYS[s])})")


def build_index(set_name: str, sources: Mapping[str, Mapping[str, str]], crop: CropRule = CropRule()
                ) -> dict[str, Any]:
    """The index document of ``set_name`` (see the module docstring) from its sources.

    sources: ``{"coco": {"ann": json, "images": dir}, "aic": {...}, "imagenet": {"train": dir}}``; the
    ones the set does not need are ignored. ``crop`` selects persons (and cuts crops) of the pose sets;
    it is recorded as ``null`` for imagenet-1k.

    Raises ConfigError for an unknown set or a missing source, DataError (message starting with the
    path at fault) for a missing or malformed annotation file, a missing or empty image folder, images
    named by the annotations but not on disk, and a source that contributes no entry.
    """
    _check_sources(set_name, sources)
    if not isinstance(crop, CropRule):
        raise ConfigError(f"crop={crop!r}: expected a CropRule")
    entries: list[list[Any]] = []
    counts: dict[str, int] = {}
    used: dict[str, dict[str, str]] = {}
    for source in SET_SOURCES[set_name]:
        spec = {k: os.fspath(sources[source][k]) for k in SOURCE_KEYS[source]}
        used[source] = spec
        if source == "imagenet":
            got, n = _imagenet_entries(spec["train"])
        else:
            got, n = _pose_entries(source, spec["ann"], spec["images"], crop, set_name in _CROP_SETS)
        entries += got
        counts.update(n)
    return {"schema": SCHEMA, "set": set_name,
            "crop": None if set_name == "imagenet-1k" else asdict(crop),
            "sources": used, "counts": {"images": len(entries), **counts}, "entries": entries}


def format_counts(doc: Mapping[str, Any]) -> str:
    """One line: ``coco-crop: 149,813 images (coco 149,813, ...)``."""
    counts = dict(doc["counts"])
    total = counts.pop("images")
    return f"{doc['set']}: {total:,} images (" + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + ")"


def write_index(doc: Mapping[str, Any], out: str | os.PathLike) -> None:
    """Write an index document to ``out`` atomically (JSON; one entry per line)."""
    head = {k: v for k, v in doc.items() if k != "entries"}
    lines = [json.dumps(e, separators=(",", ":")) for e in doc["entries"]]
    text = json.dumps(head, indent=1)[:-2] + ',\n "entries": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    atomic_write_text(out, text)


def _check_entry(path: str, i: int, entry: Any) -> None:
    ok = (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and entry[0]
          and (entry[1] is None or (isinstance(entry[1], list) and len(entry[1]) == 4
                                    and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in entry[1]) and entry[1][2] > 0 and entry[1][3] > 0
                                    and entry[1][0] >= 0 and entry[1][1] >= 0)))
    if not ok:
        raise DataError(f"{path}: entries[{i}] is {entry!r}; expected [image path, [x, y, w, h] or null] "
                        f"with x, y ≥ 0 and w, h > 0")


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The index document at ``path``, its structure checked (DataError naming the file)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: pre-training index not found (write it with python -m stages.pretrain_data)"
                        ) from None
    except OSError as exc:
        raise DataError(f"{path}: pre-training index cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: pre-training index is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"{path}: not a pre-training index (schema {got!r}; expected {SCHEMA!r})")
    if doc.get("set") not in SET_SOURCES:
        raise DataError(f"{path}: set {doc.get('set')!r} is not one of {', '.join(PRETRAIN_SETS)}")
    entries = doc.get("entries")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: `entries` is missing or empty; expected [image path, box or null] items")
    for i, entry in enumerate(entries):
        _check_entry(path, i, entry)
    if not isinstance(doc.get("counts"), dict) or doc["counts"].get("images") != len(entries):
        raise DataError(f"{path}: counts.images is {doc.get('counts', {}).get('images')!r} but the file has "
                        f"{len(entries):,} entries; the index is damaged, write it again")
    return doc


# ------------------------------------------------------------------------------------------ the dataset
def random_resized_crop_params(height: int, width: int, scale: tuple[float, float],
                               ratio: tuple[float, float], rng: np.random.Generator
                               ) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop of an ``height × width`` image: torchvision's
    ``RandomResizedCrop.get_params`` with numpy draws.

    Up to 10 tries of an area fraction ~ U(scale) and an aspect w/h log-uniform in ``ratio``; the first
    that fits is placed uniformly. Otherwise the central crop of the whole image, its aspect clamped to
    ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    h, w = max(1, min(h, height)), max(1, min(w, width))
    return (height - h) // 2, (width - w) // 2, h, w


class PretrainImageDataset(Dataset):
    """The images of a pre-training index with MAE's augmentation (see the module docstring).

    Args:
        index_file: written by :func:`write_index` (``python -m stages.pretrain_data``).
        input_size: output ``(H, W)`` (MAE: 224×224).
        scale: RandomResizedCrop area fraction range; ratio: its aspect (w/h) range, log-uniform.
        hflip: mirror with probability 0.5.
        mean, std: RGB normalisation (values in [0, 1]).

    Items are indexed by int (seed 0, epoch 0) or :class:`SampleKey`; each is ``{"img": (3, H, W)
    float32}``. :meth:`sample_params` gives the random choices of a key without reading the image.
    """

    accepts_sample_keys = True  # tells build_dataloader it may pass SampleKey items

    def __init__(self, index_file: str | os.PathLike, input_size: tuple[int, int] = (224, 224),
                 scale: tuple[float, float] = (0.2, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 hflip: bool = True, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.index_file = os.fspath(index_file)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if min(self.input_size) < 1:
            raise ConfigError(f"input_size={tuple(input_size)}: expected a positive (H, W)")
        self.scale = (float(scale[0]), float(scale[1]))
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ConfigError(f"scale={tuple(scale)}: expected 0 < min <= max <= 1 (area fraction)")
        self.ratio = (float(ratio[0]), float(ratio[1]))
        if not 0.0 < self.ratio[0] <= self.ratio[1]:
            raise ConfigError(f"ratio={tuple(ratio)}: expected 0 < min <= max (aspect w / h)")
        self.hflip = bool(hflip)
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)
        doc = read_index(self.index_file)
        self.set_name: str = doc["set"]
        self.counts: dict[str, int] = dict(doc["counts"])
        # Compact storage: a few numpy arrays instead of a million Python lists, so that forked loader
        # workers do not copy the index page by page as reference counts change.
        paths = [e[0].encode("utf-8") for e in doc["entries"]]
        self._offsets = np.zeros(len(paths) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in paths], out=self._offsets[1:])
        self._paths = np.frombuffer(b"".join(paths), dtype=np.uint8)
        self._boxes = np.array([e[1] if e[1] is not None else [-1, -1, -1, -1] for e in doc["entries"]],
                               dtype=np.float64)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def describe(self) -> str:
        return self.index_file

    def entry(self, index: int) -> tuple[str, list[float] | None]:
        """``(image path, [x, y, w, h] or None)`` of entry ``index``."""
        path = self._paths[self._offsets[index]:self._offsets[index + 1]].tobytes().decode("utf-8")
        box = self._boxes[index]
        if box[2] < 0:
            return path, None
        return path, [int(v) if float(v).is_integer() else float(v) for v in box]  # as the index has it

    def sample_params(self, key: SampleKey | int, height: int, width: int
                      ) -> tuple[tuple[int, int, int, int], bool]:
        """The random choices of ``key`` for a source region of ``height × width`` px:
        ``((top, left, h, w), flipped)``, from ``sample_rng(seed, epoch, index)``."""
        key = _as_key(key)
        rng = sample_rng(key.seed, key.epoch, key.index)
        box = random_resized_crop_params(height, width, self.scale, self.ratio, rng)
        flipped = bool(rng.random() < 0.5) and self.hflip  # drawn either way: hflip changes no other draw
        return box, flipped

    def _region(self, index: int) -> np.ndarray:
        """The entry's source pixels, RGB uint8: the whole image or its crop box."""
        path, box = self.entry(index)
        image = read_image_bgr(path, f"entry {index} of the pre-training index {self.index_file}")
        if box is not None:
            h_img, w_img = image.shape[:2]
            x1, y1 = int(round(box[0])), int(round(box[1]))
            x2, y2 = min(int(round(box[0] + box[2])), w_img), min(int(round(box[1] + box[3])), h_img)
            if x2 - x1 < 1 or y2 - y1 < 1:
                raise DataError(f"{path}: image is {w_img}×{h_img} px but entry {index} of the pre-training "
                                f"index {self.index_file} crops {box}; is the index out of date?")
            image = image[y1:y2, x1:x2]
        return np.ascontiguousarray(image[:, :, ::-1])

    def __getitem__(self, key: SampleKey | int) -> dict[str, torch.Tensor]:
        key = _as_key(key)
        index = key.index + len(self) if key.index < 0 else key.index
        if not 0 <= index < len(self):
            raise IndexError(f"index {key.index} out of range for {len(self)} entries of {self.index_file}")
        region = self._region(index)
        (top, left, h, w), flipped = self.sample_params(SampleKey(index, key.epoch, key.seed),
                                                        region.shape[0], region.shape[1])
        out_h, out_w = self.input_size
        # Cut first, then resize (torchvision's resized_crop): the filter never reaches outside the crop.
        pil = Image.fromarray(np.ascontiguousarray(region[top:top + h, left:left + w]))
        resized = np.asarray(pil.resize((out_w, out_h), Image.BICUBIC))
        if flipped:
            resized = resized[:, ::-1]
        x = (resized.astype(np.float32) / 255.0 - self.mean) / self.std
        return {"img": torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))}


def _as_key(key: SampleKey | int) -> SampleKey:
    if isinstance(key, tuple):
        return SampleKey(*key)
    return SampleKey(int(key))
