"""COCO keypoint AP / AR with pycocotools, guarded against its pitfalls (REFERENCE §4).

pycocotools crashes on an empty result list, asserts with an unhelpful message on unknown image ids,
takes the detection area from a ``bbox`` field when one is present, and never matches a ground-truth
annotation whose id is 0. Everything here is checked before pycocotools sees it, and the results file
is written (atomically) only after the evaluation succeeded.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vitpose.data.formats import PERSON_CATEGORY_ID, check_coco_annotation, fill_coco_defaults
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_write_json

# Order of COCOeval.stats for iouType="keypoints".
STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
_RESULT_KEYS = ("image_id", "category_id", "keypoints", "score")


def load_ground_truth(ann_file: str | Path, area_from_bbox: bool = False) -> COCO:
    """Read and check a COCO-format keypoint annotation file.

    Args:
        ann_file: JSON with ``images`` and ``annotations`` (``categories`` defaults to the person).
        area_from_bbox: replace each annotation's area by ``0.53 · w · h`` of its box, the OKS area of
            datasets without segmentation areas (AIC, CrowdPose; xtcocotools' ``use_area=False``,
            REFERENCE §6).

    Annotations need ``id``, ``image_id``, ``keypoints`` and ``bbox``; missing ``iscrowd``,
    ``category_id``, ``num_keypoints`` and ``area`` get mmpose's defaults
    (:func:`vitpose.data.formats.fill_coco_defaults`: 0, person, counted, w · h), as OpenMMLab's AIC
    files lack ``iscrowd`` and ``area``.

    Raises:
        DataError naming the file and the offending key or annotation (index and id).
    """
    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise DataError(f"annotation file {ann_file} does not exist")
    try:
        data = json.loads(ann_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"annotation file {ann_file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"annotation file {ann_file}: expected a JSON object at the top level")
    data.setdefault("categories", [{"id": PERSON_CATEGORY_ID, "name": "person"}])
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"annotation file {ann_file}: expected a list under key {key!r}")
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image:
            raise DataError(f"annotation file {ann_file}: images[{i}] lacks key 'id'")
    seen: set = set()
    for i, ann in enumerate(data["annotations"]):
        check_coco_annotation(ann, i, f"annotation file {ann_file}")
        # pycocotools records matches by annotation id and treats id 0 as "unmatched".
        if ann["id"] == 0:
            raise DataError(
                f"annotation file {ann_file}: annotation id 0 is not allowed (pycocotools treats "
                "id 0 as unmatched); renumber annotations from 1"
            )
        if ann["id"] in seen:
            raise DataError(f"annotation file {ann_file}: duplicate annotation id {ann['id']}")
        seen.add(ann["id"])
        fill_coco_defaults(ann)
        if area_from_bbox:
            ann["area"] = 0.53 * float(ann["bbox"][2]) * float(ann["bbox"][3])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
        coco.createIndex()
    return coco


def evaluable_count(coco_gt: COCO, image_ids: Iterable | None = None) -> int:
    """How many ground-truth persons pycocotools' keypoint evaluation would score.

    As ``COCOeval.evaluate`` counts them: an annotation of a listed image and category that is not crowd
    and has ``num_keypoints > 0`` (where the field is absent, the keypoints with visibility > 0).
    """
    images = set(coco_gt.getImgIds()) if image_ids is None else set(image_ids)
    categories = set(coco_gt.getCatIds())
    count = 0
    for ann in coco_gt.dataset["annotations"]:
        if ann.get("image_id") not in images or ann.get("category_id") not in categories:
            continue
        if ann.get("iscrowd", 0):  # pycocotools overwrites any `ignore` flag with iscrowd
            continue
        num = ann.get("num_keypoints")
        if num is None:
            num = int(np.count_nonzero(np.asarray(ann.get("keypoints", []), dtype=np.float64)[2::3] > 0))
        count += num > 0
    return count


def require_evaluable(coco_gt: COCO, ann_file: str | Path, image_ids: Iterable | None = None) -> None:
    """DataError naming ``ann_file`` when it has no ground truth to score.

    pycocotools then reports -1 (or 0) for every metric, which would be written and tabulated as if it
    were a result; an empty or all-crowd val split is a data problem, reported before any inference.
    """
    if evaluable_count(coco_gt, image_ids) > 0:
        return
    anns = coco_gt.dataset["annotations"]
    raise DataError(
        f"annotation file {ann_file}: no ground truth to evaluate against: none of its {len(anns)} "
        f"annotation(s) on {len(coco_gt.getImgIds())} image(s) is a non-crowd person with at least one "
        "labelled keypoint (num_keypoints > 0), so AP / AR would be undefined; no metric was computed"
    )


def check_results(
    results: Sequence[dict],
    coco_gt: COCO,
    num_keypoints: int,
    ann_file: str | Path,
    results_file: str | Path,
) -> list[dict]:
    """Validate results against the ground truth; return clean copies pycocotools may mutate.

    Each copy holds only ``image_id`` (int), ``category_id``, ``keypoints`` (3K floats) and ``score``;
    a ``bbox`` field is dropped so that pycocotools takes the area from the keypoints.
    """
    if len(results) == 0:
        raise DataError(
            f"no keypoint results to evaluate against {ann_file}; nothing was written to "
            f"{results_file} (did inference produce any instance?)"
        )
    image_ids = set(coco_gt.getImgIds())
    category_ids = set(coco_gt.getCatIds())
    clean: list[dict] = []
    unknown_images: list = []
    for i, res in enumerate(results):
        missing = [k for k in _RESULT_KEYS if k not in res]
        if missing:
            raise DataError(
                f"result {i} for {results_file} lacks key(s) {', '.join(missing)}; expected "
                f"{', '.join(_RESULT_KEYS)}"
            )
        image_id = res["image_id"]
        image_id = int(image_id) if isinstance(image_id, (int, np.integer)) else image_id
        if image_id not in image_ids:
            unknown_images.append(image_id)
            continue
        if res["category_id"] not in category_ids:
            raise DataError(
                f"result {i} for {results_file} has category_id {res['category_id']!r}, which is "
                f"not a category of {ann_file} (expected one of {sorted(category_ids)})"
            )
        keypoints = np.asarray(res["keypoints"], dtype=np.float64).reshape(-1)
        if keypoints.size != 3 * num_keypoints or not np.all(np.isfinite(keypoints)):
            raise DataError(
                f"result {i} for {results_file} (image_id {image_id}): expected "
                f"{3 * num_keypoints} finite keypoint values (x, y, score per keypoint), got "
                f"{keypoints.size}"
            )
        score = float(res["score"])
        if not math.isfinite(score):
            raise DataError(f"result {i} for {results_file} (image_id {image_id}) has score {score}")
        clean.append({
            "image_id": image_id,
            "category_id": int(res["category_id"]),
            "keypoints": keypoints.tolist(),
            "score": score,
        })
    if unknown_images:
        shown = ", ".join(repr(x) for x in sorted(set(unknown_images), key=str)[:10])
        raise DataError(
            f"{len(unknown_images)} result(s) for {results_file} refer to image_id(s) not in "
            f"{ann_file}: {shown}"
        )
    return clean


def keypoint_count(coco_gt: COCO, sigmas: np.ndarray | None, ann_file: str | Path) -> int:
    """K from the sigmas if given, else 17 (COCO); every annotation must carry 3K keypoint values."""
    k = 17 if sigmas is None else len(sigmas)
    for ann in coco_gt.dataset["annotations"]:
        if len(ann["keypoints"]) != 3 * k:
            hint = "" if sigmas is not None else " (pass the dataset's OKS sigmas; default: COCO-17)"
            raise DataError(
                f"annotation file {ann_file}: annotation {ann['id']} has {len(ann['keypoints'])} "
                f"keypoint values, expected {3 * k} for {k} keypoints{hint}"
            )
    return k


def run_cocoeval(
    coco_gt: COCO,
    results: list[dict],
    sigmas: np.ndarray | None,
    image_ids: Iterable | None = None,
) -> COCOeval:
    """Run pycocotools' keypoint evaluation (evaluate + accumulate + summarize), quietly.

    ``image_ids`` restricts the evaluation to a subset of images (CrowdPose easy / medium / hard).
    """
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        if sigmas is not None:
            coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        if image_ids is not None:
            coco_eval.params.imgIds = sorted(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def evaluate_coco(
    results: Sequence[dict],
    ann_file: str | Path,
    results_file: str | Path,
    sigmas: Sequence[float] | np.ndarray | None = None,
    area_from_bbox: bool = False,
) -> dict[str, float]:
    """COCO keypoint AP / AR of ``results`` against ``ann_file``; also writes ``results_file``.

    Args:
        results: COCO keypoint results (``image_id``, ``category_id``, flat ``keypoints``, ``score``),
            e.g. from :func:`vitpose.evaluation.postprocess.topdown_results`.
        ann_file: ground-truth annotation JSON.
        results_file: where the (cleaned) results JSON is written, atomically, after evaluation.
        sigmas: (K,) OKS sigmas; ``None`` uses pycocotools' COCO-17 sigmas. Set them for other
            datasets (they become ``COCOeval.params.kpt_oks_sigmas``).
        area_from_bbox: see :func:`load_ground_truth` (AIC-style areas).

    Returns:
        ``{"AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"}`` as fractions;
        -1 where pycocotools has no ground truth for a bucket (e.g. no medium persons).
    """
    sigmas_arr = None if sigmas is None else np.asarray(sigmas, dtype=np.float64).reshape(-1)
    coco_gt = load_ground_truth(ann_file, area_from_bbox=area_from_bbox)
    require_evaluable(coco_gt, ann_file)  # before the results: an empty split explains "no results" too
    k = keypoint_count(coco_gt, sigmas_arr, ann_file)
    clean = check_results(results, coco_gt, k, ann_file, results_file)
    coco_eval = run_cocoeval(coco_gt, [dict(r) for r in clean], sigmas_arr)
    atomic_write_json(results_file, clean, indent=None)
    return {name: float(value) for name, value in zip(STAT_NAMES, coco_eval.stats)}
