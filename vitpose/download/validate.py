"""Layout validation: does a data directory hold what the manifest says, in the expected layout?

Each validator takes the item's root directory, the expected counts (from the manifest, or tiny ones in tests)
and its options, checks structure (files present, every referenced image on disk) and returns the counts it
measured. ``validate_item`` compares the counts with the expectations and raises DataError on any difference.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vitpose.download.manifest import ValidateSpec
from vitpose.utils.errors import ConfigError, DataError

Counts = dict[str, int]
Validator = Callable[[Path, Mapping[str, Any]], Counts]
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _load_json(path: Path) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


def _listdir(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        raise DataError(f"image directory {path} is missing") from None


def _require_files(root: Path, files: list[str]) -> None:
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise DataError(f"missing file(s) under {root}: {', '.join(missing)}")


def _check_images_present(ann_path: Path, img_dir: Path, names: list[str]) -> None:
    on_disk = _listdir(img_dir)
    missing = [n for n in names if n not in on_disk and not (img_dir / n).is_file()]
    if missing:
        raise DataError(f"{len(missing)} image(s) referenced by {ann_path} are missing from {img_dir}, "
                        f"e.g. {', '.join(missing[:3])}")


def is_training_instance(ann: Mapping[str, Any], image: Mapping[str, Any] | None) -> bool:
    """The standard top-down instance filter: not crowd, num_keypoints > 0, positive box after clipping.

    The box ``(x, y, w, h)`` becomes ``x1 = max(0, x)``, ``x2 = min(W - 1, x + w)`` (same for y) when the image
    size is known; it must keep positive width and height. COCO train2017 gives 149,813 instances (REFERENCE §3).
    """
    if ann.get("iscrowd", 0):
        return False
    num_kpts = ann.get("num_keypoints")
    if num_kpts is None:  # some converted datasets omit it: count labelled joints instead
        num_kpts = sum(1 for v in ann.get("keypoints", [])[2::3] if v > 0)
    if num_kpts <= 0:
        return False
    bbox = ann.get("bbox")
    if not bbox or len(bbox) != 4:
        return False
    x, y, w, h = (float(v) for v in bbox)
    x1, y1, x2, y2 = max(0.0, x), max(0.0, y), x + w, y + h
    if image is not None and image.get("width") and image.get("height"):
        x2, y2 = min(float(image["width"]) - 1, x2), min(float(image["height"]) - 1, y2)
    return x2 > x1 and y2 > y1


def _check_coco_file(ann_path: Path, data: Any, options: Mapping[str, Any]) -> dict[Any, Mapping[str, Any]]:
    """Structure of one COCO-format file; returns its images by id. DataError names the file and item.

    options: ``keypoints`` (K: every annotation carries 3 × K values), ``image_keys`` (keys every image
    must have, e.g. CrowdPose's ``crowdIndex``).
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(f"{ann_path}: expected a COCO-format object with `images` and `annotations` lists")
    image_keys = ["id", "file_name", *options.get("image_keys", [])]
    images: dict[Any, Mapping[str, Any]] = {}
    for i, im in enumerate(data["images"]):
        missing = [k for k in image_keys if not isinstance(im, dict) or k not in im]
        if missing:
            raise DataError(f"{ann_path}: images[{i}] lacks key(s) {', '.join(missing)}")
        if im["id"] in images:
            raise DataError(f"{ann_path}: images[{i}] repeats image id {im['id']}")
        images[im["id"]] = im
    k = options.get("keypoints")
    if k is not None:
        from vitpose.data.formats import check_coco_annotation

        for i, ann in enumerate(data["annotations"]):
            check_coco_annotation(ann, i, str(ann_path), int(k))
            if ann["image_id"] not in images:
                raise DataError(f"{ann_path}: annotation #{i} (id {ann['id']}) refers to image id "
                                f"{ann['image_id']!r}, which is not in `images`")
    return images


def validate_coco_keypoints(root: Path, options: Mapping[str, Any]) -> Counts:
    """COCO-format keypoint splits (COCO, AIC, CrowdPose).

    options: ``splits: {name: {annotations: rel.json, images: rel_dir}}``, optional ``files: [rel, ...]``,
    ``keypoints: K`` and ``image_keys: [key, ...]`` (see ``_check_coco_file``).
    Counts per split: ``<split>_images`` (images in the annotation file, all present on disk),
    ``<split>_annotations`` (all), ``<split>_instances`` (after ``is_training_instance``).
    """
    counts: Counts = {}
    for split, spec in options["splits"].items():
        ann_path = root / spec["annotations"]
        data = _load_json(ann_path)
        images = _check_coco_file(ann_path, data, options)
        _check_images_present(ann_path, root / spec["images"], [im["file_name"] for im in data["images"]])
        counts[f"{split}_images"] = len(images)
        counts[f"{split}_annotations"] = len(data["annotations"])
        counts[f"{split}_instances"] = sum(
            is_training_instance(a, images.get(a.get("image_id"))) for a in data["annotations"])
    _require_files(root, list(options.get("files", [])))
    return counts


def validate_coco_detections(root: Path, options: Mapping[str, Any]) -> Counts:
    """A COCO-format detection result list (``image_id``, ``category_id``, ``bbox``, ``score``).

    options: ``file`` (relative to root); ``image_ids_from`` (a COCO annotation file; checked when present).
    Counts: ``detection_boxes``, ``detection_images`` and ``detection_image_ids_checked`` (1 when the ids were
    checked against the annotations).
    """
    path = root / options["file"]
    dets = _load_json(path)
    if not isinstance(dets, list):
        raise DataError(f"{path}: expected a JSON list of detections, got {type(dets).__name__}")
    for i, d in enumerate(dets):
        if not (isinstance(d, dict) and {"image_id", "category_id", "bbox", "score"} <= set(d)
                and len(d["bbox"]) == 4):
            raise DataError(f"{path}: entry {i} is not a detection with image_id, category_id, bbox[4], score")
        if d["category_id"] != 1:
            raise DataError(f"{path}: entry {i} has category_id {d['category_id']}, expected 1 (person)")
    image_ids = {d["image_id"] for d in dets}
    counts: Counts = {"detection_boxes": len(dets), "detection_images": len(image_ids),
                      "detection_image_ids_checked": 0}
    ref = options.get("image_ids_from")
    if ref and (root / ref).is_file():
        known = {im["id"] for im in _load_json(root / ref).get("images", [])}
        unknown = image_ids - known
        if unknown:
            raise DataError(f"{path}: {len(unknown)} image id(s) are not in {root / ref}, "
                            f"e.g. {sorted(unknown)[:3]}; is this the val2017 detection file?")
        counts["detection_image_ids_checked"] = 1
    return counts


def validate_coco_image_list(root: Path, options: Mapping[str, Any]) -> Counts:
    """A COCO image list without annotations (test-dev's `image_info_test-dev2017.json`): images with id
    and file_name, none repeated, every one present on disk; a file holding annotations is refused.

    options: ``file`` (relative to root), ``images`` (the image directory), ``split`` (the count's name).
    Counts: ``<split>_images``.
    """
    path = root / options["file"]
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not data["images"]:
        raise DataError(f"{path}: expected a COCO image list (an object with a non-empty `images` list)")
    if data.get("annotations"):
        raise DataError(f"{path}: holds annotations; expected an image list without them (test-dev's)")
    _check_coco_file(path, {**data, "annotations": []}, {})
    _check_images_present(path, root / options["images"], [im["file_name"] for im in data["images"]])
    return {f"{options.get('split', 'list')}_images": len(data["images"])}


def validate_mpii(root: Path, options: Mapping[str, Any]) -> Counts:
    """MPII in the OpenMMLab JSON layout: lists of ``{image, joints, joints_vis, center, scale}``.

    options: ``images`` (dir), ``annotations`` (list of JSON files), ``files`` (e.g. mpii_gt_val.mat);
    ``joints: K`` checks every entry (image, center, positive scale, K joints and K joints_vis);
    ``gt_mat`` (the .mat PCKh is computed against) with ``gt_for`` (the annotation file it scores) checks
    the .mat's structure and that it holds one person per entry of that file.
    Counts: ``<stem>_annotations`` and ``<stem>_images`` per annotation file, ``<gt stem>_people``.
    """
    _require_files(root, list(options.get("files", [])))
    counts: Counts = {}
    for rel in options["annotations"]:
        ann_path = root / rel
        if options.get("joints") is not None:
            from vitpose.data.mpii import load_mpii_annotations

            if not ann_path.is_file():
                raise DataError(f"{ann_path} is missing")
            data = load_mpii_annotations(ann_path, int(options["joints"]), require_joints=True)
        else:
            data = _load_json(ann_path)
            if not isinstance(data, list) or not all(isinstance(a, dict) and "image" in a for a in data):
                raise DataError(f"{ann_path}: expected a JSON list of objects with an `image` key")
        names = sorted({a["image"] for a in data})
        _check_images_present(ann_path, root / options["images"], names)
        stem = Path(rel).stem
        counts[f"{stem}_annotations"] = len(data)
        counts[f"{stem}_images"] = len(names)
    if options.get("gt_mat"):
        from vitpose.evaluation.pckh import load_mpii_gt

        gt = load_mpii_gt(root / options["gt_mat"])
        stem = Path(options["gt_mat"]).stem
        counts[f"{stem}_people"] = len(gt)
        scored = options.get("gt_for")
        if scored:
            n = counts.get(f"{Path(scored).stem}_annotations")
            if n is None:
                raise ConfigError(f"validate option gt_for: {scored} is not one of the `annotations`")
            if n != len(gt):
                raise DataError(f"{root / options['gt_mat']} holds {len(gt):,} people but {root / scored} "
                                f"has {n:,} entries; the .mat must describe that file's people in order")
    return counts


def validate_torch_checkpoint(root: Path, options: Mapping[str, Any]) -> Counts:
    """Files saved by ``torch.save`` (zip format: a ``*/data.pkl`` member). Content is checked by digest."""
    _require_files(root, list(options["files"]))
    for rel in options["files"]:
        path = root / rel
        try:
            with zipfile.ZipFile(path) as zf:
                ok = any(n.endswith("data.pkl") for n in zf.namelist())
        except zipfile.BadZipFile:
            ok = False
        if not ok:
            raise DataError(f"{path} is not a PyTorch checkpoint (zip format with data.pkl)")
    return {"files": len(options["files"])}


def validate_imagenet(root: Path, options: Mapping[str, Any]) -> Counts:
    """ImageNet in class-folder layout; ``train`` and ``val`` must have the same class folders."""
    counts: Counts = {}
    classes = {}
    for split in ("train", "val"):
        split_dir = root / options[split]
        if not split_dir.is_dir():
            raise DataError(f"ImageNet {split} directory {split_dir} is missing")
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
        classes[split] = {p.name for p in class_dirs}
        counts[f"{split}_images"] = sum(
            1 for d in class_dirs for e in os.scandir(d) if Path(e.name).suffix.lower() in _IMAGE_SUFFIXES)
    if classes["train"] != classes["val"]:
        raise DataError(f"ImageNet under {root}: train and val class folders differ "
                        f"(e.g. {sorted(classes['train'] ^ classes['val'])[:3]})")
    counts["classes"] = len(classes["train"])
    return counts


VALIDATORS: dict[str, Validator] = {
    "coco_keypoints": validate_coco_keypoints,
    "coco_detections": validate_coco_detections,
    "coco_image_list": validate_coco_image_list,
    "mpii": validate_mpii,
    "torch_checkpoint": validate_torch_checkpoint,
    "imagenet": validate_imagenet,
}


def check_counts(counts: Mapping[str, int], expected: Mapping[str, int], where: str) -> None:
    """Raise DataError listing every expected count that differs from the measured one."""
    unknown = [k for k in expected if k not in counts]
    if unknown:
        raise ConfigError(f"{where}: expected count(s) {unknown} are not measured; measured: {sorted(counts)}")
    wrong = [f"{k} = {counts[k]:,} (expected {v:,})" for k, v in expected.items() if counts[k] != v]
    if wrong:
        raise DataError(f"{where} does not match the manifest: " + "; ".join(wrong))


def validate_item(root: str | os.PathLike, specs: Sequence[ValidateSpec],
                  expected: Mapping[str, int] | None = None) -> Counts:
    """Run every validator of an item on ``root``; compare the merged counts with ``expected``.

    ``expected`` defaults to the union of the specs' ``expected`` (the manifest's numbers); tests and the smoke
    scale pass their own.
    """
    root = Path(root)
    counts: Counts = {}
    for spec in specs:
        if spec.kind not in VALIDATORS:
            raise ConfigError(f"unknown validate.kind {spec.kind!r}; expected one of {sorted(VALIDATORS)}")
        measured = VALIDATORS[spec.kind](root, spec.options)
        clash = set(measured) & set(counts)
        if clash:
            raise ConfigError(f"validators of {root} both measure {sorted(clash)}")
        counts.update(measured)
    if expected is None:
        expected = {k: v for spec in specs for k, v in spec.expected.items()}
    check_counts(counts, expected, str(root))
    return counts
