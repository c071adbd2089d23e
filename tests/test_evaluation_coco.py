"""COCO keypoint evaluation: ground truth scores 1.0, perturbations score less, bad input is refused."""
import json

import numpy as np
import pytest

from vitpose.evaluation.coco_eval import STAT_NAMES, evaluate_coco
from vitpose.utils.errors import DataError

K = 17


def _person(ann_id, image_id, rng, x0, y0, w, h, n_visible):
    """A person annotation with ``n_visible`` labelled keypoints inside its box (area = w·h)."""
    kpts = np.zeros((K, 3))
    labelled = rng.choice(K, size=n_visible, replace=False)
    kpts[labelled, 0] = rng.uniform(x0, x0 + w, size=n_visible)
    kpts[labelled, 1] = rng.uniform(y0, y0 + h, size=n_visible)
    kpts[labelled, 2] = rng.choice([1, 2], size=n_visible)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [x0, y0, w, h], "area": w * h, "num_keypoints": int(n_visible),
            "keypoints": kpts.reshape(-1).round(2).tolist()}


def _write_annotations(path):
    """3 images: medium and large persons, a crowd region, a zero-keypoint person, an empty image."""
    rng = np.random.default_rng(0)
    anns = [
        _person(1, 10, rng, 20, 30, 150, 300, 17),          # large
        _person(2, 10, rng, 250, 40, 40, 80, 9),            # medium (3200 px²)
        _person(3, 11, rng, 60, 60, 200, 260, 5),
        _person(4, 11, rng, 300, 100, 50, 90, 0),            # zero keypoints: ignored
        _person(5, 11, rng, 100, 100, 60, 100, 12),
        {"id": 6, "image_id": 11, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 400, 300],
         "area": 50000.0, "num_keypoints": 0, "keypoints": [0] * (3 * K),
         "segmentation": {"counts": [0, 120000], "size": [300, 400]}},   # crowd region
    ]
    data = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 400, "height": 300}
                   for i in (10, 11, 12)],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": [f"kp{i}" for i in range(K)], "skeleton": []}],
    }
    path.write_text(json.dumps(data))
    return data


def _gt_as_results(data):
    """Every scorable person (not crowd, ≥ 1 keypoint) as a prediction with score 1 keypoints."""
    results = []
    for ann in data["annotations"]:
        if ann["iscrowd"] or ann["num_keypoints"] == 0:
            continue
        kpts = np.reshape(ann["keypoints"], (K, 3)).astype(float)
        kpts[:, 2] = 1.0
        results.append({"image_id": ann["image_id"], "category_id": 1,
                        "keypoints": kpts.reshape(-1).tolist(), "score": 0.9})
    return results


def test_ground_truth_scores_one_and_perturbation_less(tmp_path):
    ann_file = tmp_path / "person_keypoints.json"
    data = _write_annotations(ann_file)
    out = tmp_path / "out" / "results.json"
    results = _gt_as_results(data)
    metrics = evaluate_coco(results, ann_file, out)
    assert list(metrics) == list(STAT_NAMES)
    for name in ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"):
        assert metrics[name] == 1.0, name
    written = json.loads(out.read_text())
    assert len(written) == 4 and all("bbox" not in r for r in written)
    assert not [p for p in out.parent.iterdir() if p.name != "results.json"]   # no temp files left

    rng = np.random.default_rng(1)
    perturbed = []
    for r in results:
        kpts = np.reshape(r["keypoints"], (K, 3)).copy()
        kpts[:, :2] += rng.normal(0, 6.0, size=(K, 2))
        perturbed.append({**r, "keypoints": kpts.reshape(-1).tolist()})
    worse = evaluate_coco(perturbed, ann_file, out)
    assert worse["AP"] < 1.0 and worse["AR"] < 1.0
    assert 0.0 <= worse["AP"]


def test_bbox_field_is_dropped_and_sigmas_are_used(tmp_path):
    ann_file = tmp_path / "ann.json"
    data = _write_annotations(ann_file)
    rng = np.random.default_rng(2)
    results = []
    for r in _gt_as_results(data):
        kpts = np.reshape(r["keypoints"], (K, 3)).copy()
        kpts[:, :2] += rng.normal(0, 4.0, size=(K, 2))
        # A tiny bbox would make pycocotools call every detection "small" and ignore it for APL.
        results.append({**r, "keypoints": kpts.reshape(-1).tolist(), "bbox": [0, 0, 1, 1]})
    plain = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    with_bbox = evaluate_coco(results, ann_file, tmp_path / "a.json")
    assert with_bbox == evaluate_coco(plain, ann_file, tmp_path / "b.json")
    # Larger sigmas forgive the same errors more: AP rises.
    loose = evaluate_coco(plain, ann_file, tmp_path / "c.json", sigmas=np.full(K, 0.5))
    assert loose["AP"] > with_bbox["AP"]


def test_empty_results_name_the_files_and_write_nothing(tmp_path):
    ann_file = tmp_path / "ann.json"
    _write_annotations(ann_file)
    out = tmp_path / "results.json"
    with pytest.raises(DataError) as err:
        evaluate_coco([], ann_file, out)
    assert str(ann_file) in str(err.value) and str(out) in str(err.value)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann.json"]


def test_unknown_image_id_is_named_and_nothing_written(tmp_path):
    ann_file = tmp_path / "ann.json"
    data = _write_annotations(ann_file)
    results = _gt_as_results(data)
    results[1] = {**results[1], "image_id": 987654}
    out = tmp_path / "results.json"
    out.write_text("previous")
    with pytest.raises(DataError, match="987654") as err:
        evaluate_coco(results, ann_file, out)
    assert str(ann_file) in str(err.value)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann.json", "results.json"]


def test_malformed_inputs_are_refused(tmp_path):
    ann_file = tmp_path / "ann.json"
    data = _write_annotations(ann_file)
    results = _gt_as_results(data)
    out = tmp_path / "r.json"
    with pytest.raises(DataError, match="does not exist"):
        evaluate_coco(results, tmp_path / "missing.json", out)
    with pytest.raises(DataError, match="51 finite keypoint values"):
        evaluate_coco([{**results[0], "keypoints": results[0]["keypoints"][:-3]}], ann_file, out)
    with pytest.raises(DataError, match="lacks key"):
        evaluate_coco([{k: v for k, v in results[0].items() if k != "score"}], ann_file, out)
    with pytest.raises(DataError, match="category_id 2"):
        evaluate_coco([{**results[0], "category_id": 2}], ann_file, out)

    bad = json.loads(ann_file.read_text())
    bad["annotations"][0]["id"] = 0              # pycocotools would silently never match it
    zero_id = tmp_path / "zero.json"
    zero_id.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="annotation id 0"):
        evaluate_coco(results, zero_id, out)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        evaluate_coco(results, broken, out)
    with pytest.raises(DataError, match="14 keypoints"):
        evaluate_coco(results, ann_file, out, sigmas=np.full(14, 0.05))
    assert not out.exists()
