"""Evaluation by dataset name: ground truth scores 1.0 on COCO, AIC, CrowdPose (AP) and MPII (PCKh);
AIC files without iscrowd / area; MPII against mpii_gt_val.mat; bad input named."""
import json

import numpy as np
import pytest

from vitpose.data.keypoints import AIC
from vitpose.data.multi import build_topdown_dataset
from vitpose.data.synthetic import (generate_synthetic_aic, generate_synthetic_coco, generate_synthetic_crowdpose,
                                    generate_synthetic_mpii, write_mpii_gt_mat)
from vitpose.evaluation import METRICS, check_evaluation_inputs, evaluate_dataset, evaluate_mpii, load_mpii_gt
from vitpose.utils.errors import ConfigError, DataError

VAL = {"coco": "annotations/person_keypoints_val2017.json", "aic": "annotations/aic_val.json",
       "crowdpose": "annotations/mmpose_crowdpose_test.json", "mpii": "annotations/mpii_val.json"}
IMAGES = {"coco": "val2017", "aic": "ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911",
          "crowdpose": "images", "mpii": "images"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaldata")
    gens = {"coco": generate_synthetic_coco, "aic": generate_synthetic_aic, "mpii": generate_synthetic_mpii,
            "crowdpose": generate_synthetic_crowdpose}
    for name, gen in gens.items():
        gen(base / name, seed=3, num_train=0, num_val=6, image_size=(96, 128), progress=False)
    return base


def _gt_results(ann_file):
    data = json.loads(ann_file.read_text())
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in data["annotations"] if not a.get("iscrowd", 0) and a.get("num_keypoints", 1) > 0]


@pytest.mark.parametrize("name", ["coco", "aic", "crowdpose"])
def test_ground_truth_scores_ap_1(roots, tmp_path, name):
    ann = roots / name / VAL[name]
    assert check_evaluation_inputs(name, ann) > 0
    metrics = evaluate_dataset(name, _gt_results(ann), ann, tmp_path / "results.json")
    assert set(metrics) == set(METRICS[name])
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AP50"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) or v == -1.0 for v in metrics.values()), metrics
    assert (tmp_path / "results.json").is_file()


def test_mpii_ground_truth_through_the_loader_scores_pckh_1(roots, tmp_path):
    """The val dataset's (0-based) keypoints, submitted in its order, match the .mat's 1-based joints."""
    ann = roots / "mpii" / VAL["mpii"]
    ds = build_topdown_dataset("mpii", ann, roots / "mpii" / IMAGES["mpii"], train=False)
    preds = np.stack([inst.keypoints for inst in ds.instances])          # (N, 16, 3) 0-based
    assert check_evaluation_inputs("mpii", ann) == len(ds)
    metrics = evaluate_dataset("mpii", preds, ann, tmp_path / "mpii_results.json")
    assert set(metrics) == set(METRICS["mpii"])
    assert metrics["PCKh"] == 1.0 and metrics["PCKh@0.1"] == 1.0 and metrics["Head"] == 1.0
    saved = json.loads((tmp_path / "mpii_results.json").read_text())
    assert len(saved) == len(ds) and len(saved[0]["keypoints"]) == 48
    # The same as {instance_index, keypoints} records in any order.
    shuffled = [{"instance_index": i, "keypoints": preds[i].reshape(-1).tolist()} for i in range(len(ds))][::-1]
    assert evaluate_dataset("mpii", shuffled, ann, tmp_path / "r2.json")["PCKh"] == 1.0
    # An offset of 0.6 head sizes misses every joint.
    off = preds.copy()
    gt = load_mpii_gt(roots / "mpii/annotations/mpii_gt_val.mat")
    head = 0.6 * np.linalg.norm(gt.head_boxes[:, 2:] - gt.head_boxes[:, :2], axis=1)
    off[:, :, 0] += 0.6 * head[:, None]
    assert evaluate_dataset("mpii", off, ann, tmp_path / "r3.json")["PCKh"] == 0.0


def _mat_case(tmp_path):
    """Two people, hand-made: head boxes 30×40 (diag 50 → head 30 px) and 60×80 (head 60 px)."""
    joints0 = np.full((2, 16, 2), 100.0)            # 0-based truth
    vis = np.ones((2, 16))
    vis[1, 11] = 0
    heads = np.array([[1, 1, 31, 41], [1, 1, 61, 81]], float)
    write_mpii_gt_mat(tmp_path / "mpii_gt_val.mat", joints0 + 1.0, vis, heads)
    return joints0, vis


def test_evaluate_mpii_arithmetic_and_exclusions(tmp_path):
    truth, vis = _mat_case(tmp_path)
    pred = truth.copy()
    pred[0, :8, 0] += 14.0        # 14 / 30 ≤ 0.5: right
    pred[0, 8:, 0] += 16.0        # 16 / 30 > 0.5: wrong
    pred[1, :, 0] += 29.0         # 29 / 60: right
    pred[1, 10, 0] += 2.0         # 31 / 60: wrong
    m = evaluate_mpii(pred, tmp_path / "mpii_gt_val.mat")
    # kept joints: all but pelvis (6) and thorax (7); person 0 gets joints 0-5 right, person 1 all
    # visible kept joints but 10 (joint 11 not annotated): (6 + 12) / (14 + 13)
    assert m["PCKh"] == pytest.approx(18 / 27)
    assert m["Head"] == pytest.approx(0.5) and m["Ankle"] == pytest.approx(1.0)
    assert m["Wrist"] == pytest.approx(0.5 * (0.5 + 0.0))
    assert m["PCKh@0.1"] == 0.0
    pred[:, 6:8] += 1000           # pelvis and thorax do not count
    assert evaluate_mpii(pred, tmp_path / "mpii_gt_val.mat")["PCKh"] == pytest.approx(18 / 27)


def test_mpii_predictions_are_moved_to_1_based_pixels(tmp_path):
    """Tiny heads (0.1 × head size < 1 px): only the + 1 of the protocol makes 0-based truth score 1.0."""
    truth = np.full((1, 16, 2), 50.0)
    write_mpii_gt_mat(tmp_path / "mpii_gt_val.mat", truth + 1.0, np.ones((1, 16)), np.array([[40, 40, 45, 45.0]]))
    assert evaluate_mpii(truth, tmp_path / "mpii_gt_val.mat")["PCKh@0.1"] == 1.0
    assert evaluate_mpii(truth + 1.0, tmp_path / "mpii_gt_val.mat")["PCKh@0.1"] == 0.0


def test_mpii_bad_input(tmp_path):
    truth, _ = _mat_case(tmp_path)
    with pytest.raises(DataError, match=r"missing\.mat: MPII ground-truth file not found"):
        evaluate_mpii(truth, tmp_path / "missing.mat")
    ann = tmp_path / "mpii_val.json"
    ann.write_text(json.dumps([{"image": "a.jpg", "center": [1, 1], "scale": 1.0}] * 2))
    (tmp_path / "elsewhere").mkdir()
    ann2 = tmp_path / "elsewhere" / "mpii_val.json"
    ann2.write_text(ann.read_text())
    with pytest.raises(DataError, match=r"elsewhere/mpii_gt_val\.mat: MPII ground-truth file not found"):
        evaluate_dataset("mpii", truth, ann2, tmp_path / "r.json")      # default: beside the val JSON
    with pytest.raises(DataError, match=r"mpii_gt_val\.mat: MPII ground-truth file not found"):
        check_evaluation_inputs("mpii", ann2)
    with pytest.raises(DataError, match=r"1 predicted people, but the ground truth has 2"):
        evaluate_dataset("mpii", truth[:1], ann, tmp_path / "r.json")
    with pytest.raises(DataError, match=r"shape \(2, 17, 2\); expected \(N, 16, 2 or 3\)"):
        evaluate_mpii(np.zeros((2, 17, 2)), tmp_path / "mpii_gt_val.mat")
    ann.write_text(json.dumps([{"image": "a.jpg", "center": [1, 1], "scale": 1.0}] * 3))
    with pytest.raises(DataError, match=r"mpii_val\.json: 3 people, but .*mpii_gt_val\.mat has 2"):
        evaluate_dataset("mpii", truth, ann, tmp_path / "r.json")
    (tmp_path / "mpii_gt_val.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(DataError, match=r"mpii_gt_val\.mat: not a readable MATLAB file"):
        evaluate_mpii(truth, tmp_path / "mpii_gt_val.mat")
    assert not (tmp_path / "r.json").exists()


def _aic_val(path, with_iscrowd=False):
    """Two people in OpenMMLab's converted AIC format: no iscrowd, no area, no num_keypoints."""
    rng = np.random.default_rng(0)
    anns = []
    for j, (x0, y0, w, h) in enumerate([(20, 30, 120, 260), (200, 40, 100, 240)]):
        kpts = np.stack([rng.uniform(x0, x0 + w, 14), rng.uniform(y0, y0 + h, 14), np.full(14, 2)], 1)
        anns.append({"id": j + 1, "image_id": 7, "category_id": 1, "bbox": [x0, y0, w, h],
                     "keypoints": kpts.reshape(-1).round(2).tolist()})
        if with_iscrowd:
            anns[-1]["iscrowd"] = 0
    path.write_text(json.dumps({"images": [{"id": 7, "file_name": "a.jpg", "width": 400, "height": 320}],
                                "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": list(AIC.keypoint_names)}]}))
    return anns


def test_aic_file_without_iscrowd_defaults_to_0(tmp_path):
    anns = _aic_val(tmp_path / "aic_val.json")
    results = [{"image_id": 7, "category_id": 1, "keypoints": a["keypoints"], "score": 0.9} for a in anns]
    metrics = evaluate_dataset("aic", results, tmp_path / "aic_val.json", tmp_path / "r.json")
    assert metrics["AP"] == pytest.approx(1.0)
    # The OKS area is 0.53·w·h of the box (AIC sigmas are small: a 3 px error already costs AP).
    noisy = [dict(r, keypoints=(np.array(r["keypoints"]) + np.tile([3.0, 0, 0], 14)).tolist()) for r in results]
    with_iscrowd = tmp_path / "with.json"
    _aic_val(with_iscrowd, with_iscrowd=True)
    a = evaluate_dataset("aic", noisy, tmp_path / "aic_val.json", tmp_path / "r.json")["AP"]
    b = evaluate_dataset("aic", noisy, with_iscrowd, tmp_path / "r.json")["AP"]
    assert a == b < 1.0


def test_keypoint_count_and_unknown_dataset(tmp_path, roots):
    ann = roots / "coco" / VAL["coco"]
    # COCO ground truth (17 keypoints) scored as AIC (14): named, nothing written.
    with pytest.raises(DataError, match=r"annotation \d+ has 51 keypoint values, expected 42 for 14 keypoints"):
        evaluate_dataset("aic", _gt_results(ann), ann, tmp_path / "r.json")
    aic_ann = roots / "aic" / VAL["aic"]
    bad = [dict(r, keypoints=r["keypoints"] + [0, 0, 0]) for r in _gt_results(aic_ann)]
    with pytest.raises(DataError, match=r"expected 42 finite keypoint values"):
        evaluate_dataset("aic", bad, aic_ann, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(ConfigError, match=r"unknown dataset 'posetrack' for evaluation; expected one of aic, "
                                          r"coco, crowdpose, mpii"):
        evaluate_dataset("posetrack", [], ann, tmp_path / "r.json")
    with pytest.raises(ConfigError, match="unknown dataset"):
        check_evaluation_inputs("posetrack", ann)


def test_missing_required_ground_truth_key_names_file_and_annotation(tmp_path):
    _aic_val(tmp_path / "aic_val.json")
    data = json.loads((tmp_path / "aic_val.json").read_text())
    del data["annotations"][1]["bbox"]
    (tmp_path / "aic_val.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"aic_val\.json: annotation #1 \(id 2\) lacks key\(s\) bbox"):
        check_evaluation_inputs("aic", tmp_path / "aic_val.json")
