"""Reliability of evaluation: a val split without scorable ground truth is a DataError, not a score.

pycocotools "scores" detections against zero evaluable persons as -1 (or 0), which the evaluate stage
wrote to metrics.json as if it were a result. Evaluable, as pycocotools counts it: a non-crowd annotation
with num_keypoints > 0, of a listed image and category.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_support import make_synthetic, tiny_config
from vitpose.evaluation.coco_eval import evaluable_count, evaluate_coco, load_ground_truth
from vitpose.evaluation.crowdpose import evaluate_crowdpose
from vitpose.utils.errors import DataError

K = 17


def _ann(ann_id: int, num_keypoints: int, iscrowd: int = 0, image_id: int = 1, k: int = K) -> dict:
    kpts = [0.0] * (3 * k)
    for j in range(num_keypoints):
        kpts[3 * j:3 * j + 3] = [20.0 + j, 30.0 + j, 2.0]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": [10, 10, 50, 80],
            "area": 4000.0, "num_keypoints": num_keypoints, "keypoints": kpts}


def _write(path: Path, anns: list[dict], **image_extra) -> Path:
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100, **image_extra}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person"}],
    }))
    return path


def _results(k: int = K) -> list[dict]:
    return [{"image_id": 1, "category_id": 1, "keypoints": [25.0, 35.0, 0.9] * k, "score": 0.8}]


@pytest.mark.parametrize("anns", [
    [],
    [_ann(1, 0)],                                  # a person without labelled keypoints
    [_ann(1, 5, iscrowd=1)],                       # a crowd region
    [_ann(1, 5, image_id=99)],                     # on an image the file does not list
], ids=["no-annotation", "no-keypoints", "crowd-only", "unknown-image"])
def test_coco_without_evaluable_ground_truth_names_the_file_and_writes_nothing(tmp_path, anns):
    ann_file = _write(tmp_path / "person_keypoints_val2017.json", anns)
    out = tmp_path / "results_keypoints.json"
    with pytest.raises(DataError) as err:
        evaluate_coco(_results(), ann_file, out)
    first = str(err.value).splitlines()[0]
    assert str(ann_file) in first and "no ground truth to evaluate" in first
    assert not out.exists()


def test_one_evaluable_person_is_enough(tmp_path):
    ann_file = _write(tmp_path / "val.json", [_ann(1, 0), _ann(2, 3, iscrowd=1), _ann(3, 4)])
    assert evaluable_count(load_ground_truth(ann_file)) == 1
    stats = evaluate_coco(_results(), ann_file, tmp_path / "r.json")
    assert set(stats) >= {"AP", "AR"} and (tmp_path / "r.json").exists()


def test_crowdpose_without_evaluable_ground_truth_names_the_file(tmp_path):
    ann_file = _write(tmp_path / "crowdpose_test.json", [_ann(1, 0, k=14)], crowdIndex=0.5)
    with pytest.raises(DataError, match=r"crowdpose_test\.json.*no ground truth to evaluate"):
        evaluate_crowdpose(_results(14), ann_file, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_inference_refuses_an_empty_val_split_before_predicting(tmp_path, monkeypatch):
    """The check comes before the inference (minutes at paper scale), not after it."""
    from vitpose.config import RunConfig
    from vitpose.engine import inference

    root = make_synthetic(tmp_path / "coco", num_train=1, num_val=2)
    val = root / "annotations/person_keypoints_val2017.json"
    doc = json.loads(val.read_text())
    doc["annotations"] = [dict(a, iscrowd=1) for a in doc["annotations"]]
    val.write_text(json.dumps(doc))
    cfg = RunConfig.from_dict(tiny_config(root))

    def no_predict(*args, **kwargs):
        raise AssertionError("predict ran on a val split without ground truth")

    monkeypatch.setattr(inference, "predict", no_predict)
    with pytest.raises(DataError, match=r"person_keypoints_val2017\.json.*no ground truth to evaluate"):
        inference.evaluate(cfg, checkpoint=None, out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
