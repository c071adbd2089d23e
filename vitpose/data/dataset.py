"""Top-down datasets: one sample per person box, cropped, augmented and encoded as heatmaps.

:class:`TopDownDataset` turns a list of :class:`Instance` (person boxes with keypoints) into samples;
the formats only differ in how they read their annotation files into instances:

- :class:`TopDownCocoDataset` — COCO-style JSON (COCO, AIC, CrowdPose). Training uses the ground-truth
  boxes with the released filters (REFERENCE §3): not crowd, at least one labelled keypoint, positive
  width and height after ``xywh → xyxy`` clipping to the image. Evaluation uses either the same
  ground-truth boxes or a detection file in the released format (a list of
  ``{image_id, category_id, bbox: [x, y, w, h], score}``). Keys that converted datasets omit get
  mmpose's defaults: ``iscrowd`` 0, ``num_keypoints`` counted (v > 0), ``area`` w·h of the box,
  ``category_id`` 1 (person).
- ``vitpose.data.mpii.TopDownMpiiDataset`` — OpenMMLab's MPII JSON list (center / scale boxes).

``vitpose.data.multi.build_topdown_dataset`` picks the right one by dataset name.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from vitpose.data.affine import transform_points, udp_warp_matrix, warp_image
from vitpose.data.codec import udp_encode
from vitpose.data.formats import PERSON_CATEGORY_ID, fill_coco_defaults
from vitpose.data.image_io import read_image_bgr
from vitpose.data.keypoints import KeypointMeta
from vitpose.data.transforms import (
    AugmentConfig,
    augment,
    bbox_xyxy_to_center_scale,
    fix_aspect_ratio,
    normalize_image,
    sample_rng,
)
from vitpose.utils.errors import ConfigError, DataError



class SampleKey(NamedTuple):
    """What a loader asks for: the item and the (seed, epoch) its augmentation is drawn from."""

    index: int
    epoch: int = 0
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Instance:
    """One person box to crop.

    ``bbox`` is ``(x1, y1, x2, y2)`` in image pixels; ``keypoints`` (K, 3) ``(x, y, v)`` or None
    for detected boxes; ``ann_id`` is None for detections (``det_index`` names the detection).
    """

    image_id: int
    file_name: str
    width: int | None           # None: not recorded by the format (MPII); the image is not checked
    height: int | None
    bbox: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None
    ann_id: int | None = None
    det_index: int | None = None
    ann_index: int | None = None   # position in the annotation file (formats without annotation ids)

    def describe(self) -> str:
        if self.ann_id is not None:
            return f"annotation id {self.ann_id}, image id {self.image_id}"
        if self.det_index is not None:
            return f"detection #{self.det_index}, image id {self.image_id}"
        return f"annotation #{self.ann_index}, image {self.file_name}"


def _load_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: {what} file is not valid JSON ({e})") from None


def _index_annotations(path: str, data: Any, num_keypoints: int, meta_name: str) -> COCO:
    """Check the structure the dataset relies on, then index it with pycocotools.

    Raises DataError naming the file and the offending image / annotation.
    """
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a COCO annotation object, got {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: key {key!r} missing or not a list")
    image_ids = set()
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not all(k in img for k in ("id", "file_name", "width", "height")):
            raise DataError(f"{path}: images[{i}] must have id, file_name, width and height")
        image_ids.add(img["id"])
    expected = 3 * num_keypoints
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "id" not in ann or "image_id" not in ann:
            raise DataError(f"{path}: annotations[{i}] must have id and image_id")
        where = f"annotation id {ann['id']} (image id {ann['image_id']})"
        if ann["image_id"] not in image_ids:
            raise DataError(f"{path}: {where} refers to an image id not in 'images'")
        kpts, bbox = ann.get("keypoints"), ann.get("bbox")
        if not isinstance(kpts, list) or len(kpts) != expected:
            got = len(kpts) if isinstance(kpts, list) else type(kpts).__name__
            raise DataError(f"{path}: {where} has keypoints of length {got}; expected 3×K = "
                            f"{expected} numbers for {meta_name}")
        if not all(isinstance(v, (int, float)) for v in kpts):
            raise DataError(f"{path}: {where} has non-numeric keypoints; expected {expected} numbers")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise DataError(f"{path}: {where} has bbox {bbox!r}; expected [x, y, w, h] numbers")
        fill_coco_defaults(ann)
    data.setdefault("categories", [{"id": PERSON_CATEGORY_ID, "name": "person"}])
    coco = COCO()  # built from the dict: COCO(path) would read the file a second time
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress chatter
        coco.createIndex()
    return coco


def _gt_instances(coco: COCO) -> list[Instance]:
    """Ground-truth person boxes kept by the released filters, in (image id, annotation) order."""
    out = []
    for image_id in sorted(coco.imgs):
        img = coco.imgs[image_id]
        w_img, h_img = img["width"], img["height"]
        for ann in coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0) or ann.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID:
                continue
            kpts = np.asarray(ann["keypoints"], dtype=np.float32).reshape(-1, 3)
            num = ann.get("num_keypoints", int(np.count_nonzero(kpts[:, 2])))
            if num <= 0 or kpts[:, :2].max() <= 0:
                continue
            x, y, w, h = ann["bbox"]
            x1, y1 = np.clip(x, 0, w_img - 1), np.clip(y, 0, h_img - 1)
            x2, y2 = np.clip(x + w, 0, w_img - 1), np.clip(y + h, 0, h_img - 1)
            if x2 - x1 <= 0 or y2 - y1 <= 0:
                continue
            out.append(Instance(image_id, img["file_name"], w_img, h_img,
                                (float(x1), float(y1), float(x2), float(y2)), 1.0, kpts,
                                ann_id=ann["id"]))
    return out


def _det_instances(det_file: str, coco: COCO, score_thr: float) -> list[Instance]:
    """Category-1 detections with score ≥ ``score_thr`` (released: no threshold); boxes unclipped."""
    dets = _load_json(det_file, "detection")
    if not isinstance(dets, list):
        raise DataError(f"{det_file}: expected a list of detections, got {type(dets).__name__}")
    if not dets:
        raise DataError(f"{det_file}: the detection file is empty; expected at least one person box")
    out = []
    for i, det in enumerate(dets):
        if not isinstance(det, dict) or not all(k in det for k in ("image_id", "bbox", "score")):
            raise DataError(f"{det_file}: detection #{i} must have image_id, bbox and score")
        if not isinstance(det["score"], (int, float)):
            raise DataError(f"{det_file}: detection #{i} has score {det['score']!r}; expected a number")
        image_id = det["image_id"]
        if image_id not in coco.imgs:
            raise DataError(f"{det_file}: detection #{i} has image id {image_id!r}, which is not in "
                            f"the annotation file's images")
        bbox = det["bbox"]
        if not isinstance(bbox, list) or len(bbox) < 4 or not all(
                isinstance(v, (int, float)) for v in bbox[:4]):
            raise DataError(f"{det_file}: detection #{i} (image id {image_id}) has bbox {bbox!r}; "
                            f"expected [x, y, w, h]")
        if det.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID or det["score"] < score_thr:
            continue
        x, y, w, h = (float(v) for v in bbox[:4])
        if not (w > 0 and h > 0):
            raise DataError(f"{det_file}: detection #{i} (image id {image_id}) has a box of size "
                            f"{w}×{h}; expected positive width and height")
        img = coco.imgs[image_id]
        out.append(Instance(image_id, img["file_name"], img["width"], img["height"],
                            (x, y, x + w, y + h), float(det["score"]), None, det_index=i))
    return out


class TopDownDataset(Dataset):
    """Person crops of a list of :class:`Instance`: the part every annotation format shares.

    Subclasses read their annotation file into ``instances`` and call ``super().__init__``.

    Args:
        instances: the person boxes, in sample order.
        img_dir: directory holding the images named by each instance's ``file_name``.
        meta: keypoint layout; every instance carries ``meta.num_keypoints`` keypoints.
        input_size: crop size ``(H, W)``; heatmap_size: ``(h, w)``.
        train: augment (``aug``, default :class:`AugmentConfig`); otherwise crops are plain.
        sigma: Gaussian σ of the targets in heatmap pixels.
        ann_file: the annotation file (for messages).
        dataset_index: when not None, every sample carries it as ``dataset_index`` (int64): the
            position of this dataset among those of a multi-dataset run, i.e. which decoder it trains.

    Items are indexed by int or :class:`SampleKey`; see :meth:`sample`.
    """

    accepts_sample_keys = True  # tells build_dataloader it may pass SampleKey items

    def __init__(
        self,
        instances: list[Instance],
        img_dir: str | os.PathLike,
        meta: KeypointMeta,
        input_size: tuple[int, int] = (256, 192),
        heatmap_size: tuple[int, int] = (64, 48),
        train: bool = True,
        sigma: float = 2.0,
        aug: AugmentConfig | None = None,
        ann_file: str | os.PathLike = "",
        dataset_index: int | None = None,
    ) -> None:
        self.instances = instances
        self.img_dir = Path(img_dir)
        self.meta = meta
        self.name = meta.name
        self.ann_file = str(ann_file)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.train = bool(train)
        self.sigma = float(sigma)
        self.aug = (aug or AugmentConfig()) if train else None
        self.dataset_index = None if dataset_index is None else int(dataset_index)

    def __len__(self) -> int:
        return len(self.instances)

    def _read_image_bgr(self, inst: Instance) -> np.ndarray:
        """BGR uint8 (H_img, W_img, 3), as decoded; DataError naming the file and the item if unreadable."""
        path = self.img_dir / inst.file_name
        # Not cv2.imread: it returns a grey-filled image for a truncated JPEG instead of failing.
        image = read_image_bgr(path, inst.describe())
        if inst.width is not None and image.shape[:2] != (inst.height, inst.width):
            raise DataError(f"{path}: image is {image.shape[1]}×{image.shape[0]} px but the annotation "
                            f"file says {inst.width}×{inst.height} ({inst.describe()})")
        return image

    def _read_image(self, inst: Instance) -> np.ndarray:
        """RGB uint8 (H_img, W_img, 3); DataError naming the file and the item if unreadable."""
        return cv2.cvtColor(self._read_image_bgr(inst), cv2.COLOR_BGR2RGB)

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor]:
        """One crop. ``key`` is an index or a :class:`SampleKey`; an int means epoch 0, seed 0."""
        key = SampleKey(int(key)) if not isinstance(key, tuple) else SampleKey(*key)
        return self.sample(key.index, key.epoch, key.seed)

    def sample(self, index: int, epoch: int = 0, seed: int = 0,
               rng_index: int | None = None) -> dict[str, torch.Tensor]:
        """Crop ``index``, augmented (when training) from ``sample_rng(seed, epoch, rng_index)``.

        ``rng_index`` defaults to ``index``; a multi-dataset wrapper passes its global index so that
        the datasets' augmentations do not repeat one another.

        Returns img (3, H, W) float32 normalised RGB, target (K, h, w) float32, target_weight (K,)
        float32, center (2,) and scale (2,) float32 (aspect-fixed padded box size ``(w, h)`` px),
        rotation (degrees), image_id int64, bbox_score float32, flipped bool, and dataset_index int64
        when the dataset has one.
        """
        if index < 0:
            index += len(self)
        inst = self.instances[index]
        # Kept in BGR until cropped: flip and warp treat the channels alike, so converting the small
        # crop instead of the whole image gives the same pixels for a fraction of the work.
        image = self._read_image_bgr(inst)
        k = self.meta.num_keypoints
        if inst.keypoints is not None:
            keypoints = inst.keypoints[:, :2].copy()
            visible = np.minimum(inst.keypoints[:, 2], 1.0).astype(np.float32)  # v ∈ {1, 2} count
        else:
            keypoints = np.zeros((k, 2), np.float32)
            visible = np.zeros(k, np.float32)
        center, scale = bbox_xyxy_to_center_scale(np.array(inst.bbox))
        rotation, flipped = 0.0, False
        if self.aug is not None:
            rng = sample_rng(seed, epoch, index if rng_index is None else rng_index)
            image, keypoints, visible, center, scale, rotation, flipped = augment(
                image, keypoints, visible, center, scale, self.meta, self.aug, rng)
        scale = fix_aspect_ratio(scale, self.input_size[1] / self.input_size[0])

        matrix = udp_warp_matrix(center, scale, rotation, self.input_size)
        crop = cv2.cvtColor(warp_image(image, matrix, self.input_size), cv2.COLOR_BGR2RGB)
        target, weight = udp_encode(transform_points(keypoints, matrix), visible,
                                    self.input_size, self.heatmap_size, self.sigma)
        out = {
            "img": normalize_image(crop),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "center": torch.from_numpy(center.astype(np.float32)),
            "scale": torch.from_numpy(scale.astype(np.float32)),
            "rotation": torch.tensor(rotation, dtype=torch.float32),
            "image_id": torch.tensor(inst.image_id, dtype=torch.int64),
            "bbox_score": torch.tensor(inst.score, dtype=torch.float32),
            "flipped": torch.tensor(flipped),
        }
        if self.dataset_index is not None:
            out["dataset_index"] = torch.tensor(self.dataset_index, dtype=torch.int64)
        return out


class TopDownCocoDataset(TopDownDataset):
    """Person crops of a COCO-format keypoint dataset (COCO, AIC, CrowdPose).

    Args:
        ann_file: COCO keypoint annotation JSON.
        img_dir: directory holding the images named by ``file_name``.
        meta: keypoint layout; annotations must carry ``3 × meta.num_keypoints`` numbers.
        input_size: crop size ``(H, W)``; heatmap_size: ``(h, w)``.
        train: ground-truth boxes with augmentation (``aug``, default :class:`AugmentConfig`).
        det_file: detections for evaluation; used unless ``use_gt_boxes`` is True.
        use_gt_boxes: evaluate on ground-truth boxes; None means "unless det_file is given".
        sigma: Gaussian σ of the targets in heatmap pixels.
        det_score_thr: detections below this score are dropped (released: 0.0, keep all).
        dataset_index: see :class:`TopDownDataset` (None: samples carry no ``dataset_index``).

    Items are indexed by int or :class:`SampleKey`; see :meth:`TopDownDataset.sample`.
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        img_dir: str | os.PathLike,
        meta: KeypointMeta,
        input_size: tuple[int, int] = (256, 192),
        heatmap_size: tuple[int, int] = (64, 48),
        train: bool = True,
        det_file: str | os.PathLike | None = None,
        use_gt_boxes: bool | None = None,
        sigma: float = 2.0,
        aug: AugmentConfig | None = None,
        det_score_thr: float = 0.0,
        dataset_index: int | None = None,
    ) -> None:
        if use_gt_boxes is None:
            use_gt_boxes = det_file is None
        if train and det_file is not None:
            raise ConfigError(f"det_file={det_file}: detection boxes are for evaluation, not training")
        if not use_gt_boxes and det_file is None:
            raise ConfigError("use_gt_boxes=False needs a det_file with detected person boxes")
        self.use_gt_boxes = bool(use_gt_boxes)
        self.det_file = None if self.use_gt_boxes else str(det_file)

        data = _load_json(str(ann_file), "annotation")
        self.coco = _index_annotations(str(ann_file), data, meta.num_keypoints, meta.name)
        if self.use_gt_boxes:
            instances = _gt_instances(self.coco)
        else:
            instances = _det_instances(self.det_file, self.coco, det_score_thr)
        super().__init__(instances, img_dir, meta, input_size, heatmap_size, train, sigma, aug,
                         ann_file, dataset_index)
