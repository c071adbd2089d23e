"""CrowdPose AP: 0.53·w·h areas, 14 sigmas, easy / medium / hard by image crowd index."""
import json

import numpy as np
import pytest

from vitpose.data.keypoints import CROWDPOSE
from vitpose.evaluation.crowdpose import crowd_index_splits, evaluate_crowdpose
from vitpose.utils.errors import DataError

K = 14


def _write_crowdpose(path, with_crowd_index=True):
    """Six images, two per crowd level; CrowdPose annotations carry no 'area'."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i, crowd in enumerate([0.05, 0.1, 0.3, 0.7, 0.85, 1.0]):
        image = {"id": 100 + i, "file_name": f"{100 + i}.jpg", "width": 640, "height": 480}
        if with_crowd_index:
            image["crowdIndex"] = crowd
        images.append(image)
        for j in range(2):
            x0, y0, w, h = 50 + 250 * j, 40, 180, 380
            kpts = np.zeros((K, 3))
            kpts[:, 0] = rng.uniform(x0, x0 + w, K)
            kpts[:, 1] = rng.uniform(y0, y0 + h, K)
            kpts[:, 2] = 2
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": 1, "iscrowd": 0,
                         "bbox": [x0, y0, w, h], "num_keypoints": K,
                         "keypoints": kpts.reshape(-1).round(2).tolist()})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(CROWDPOSE.keypoint_names)}]}
    path.write_text(json.dumps(data))
    return data


def _results(data, noise_on=(), sigma=8.0):
    rng = np.random.default_rng(1)
    out = []
    for ann in data["annotations"]:
        kpts = np.reshape(ann["keypoints"], (K, 3)).astype(float)
        kpts[:, 2] = 1.0
        if ann["image_id"] in noise_on:
            kpts[:, :2] += rng.normal(0, sigma, size=(K, 2))
        out.append({"image_id": ann["image_id"], "category_id": 1,
                    "keypoints": kpts.reshape(-1).tolist(), "score": 0.9})
    return out


def test_crowdpose_ground_truth_and_hard_only_perturbation(tmp_path):
    ann_file = tmp_path / "crowdpose_test.json"
    data = _write_crowdpose(ann_file)
    metrics = evaluate_crowdpose(_results(data), ann_file, tmp_path / "r.json")
    assert set(metrics) == {"AP", "AP50", "AP75", "AR", "AR50", "AR75",
                            "AP_easy", "AP_medium", "AP_hard"}
    assert all(v == 1.0 for v in metrics.values()), metrics
    assert (tmp_path / "r.json").exists()

    hard = evaluate_crowdpose(_results(data, noise_on=(104, 105)), ann_file, tmp_path / "r.json")
    assert hard["AP_easy"] == 1.0 and hard["AP_medium"] == 1.0
    assert hard["AP_hard"] < 1.0 and hard["AP"] < 1.0


def test_crowdpose_uses_box_area_for_oks(tmp_path):
    # The same pixel error costs more OKS on a smaller area: 0.53·w·h, not w·h, must be used.
    ann_file = tmp_path / "c.json"
    data = _write_crowdpose(ann_file)
    res = _results(data, noise_on=range(100, 106), sigma=10.0)
    with_053 = evaluate_crowdpose(res, ann_file, tmp_path / "r.json")
    # Scaling sigmas by 1/sqrt(0.53) is equivalent to using the full box area.
    full_area = evaluate_crowdpose(res, ann_file, tmp_path / "r2.json",
                                   sigmas=np.asarray(CROWDPOSE.sigmas) / np.sqrt(0.53))
    assert with_053["AP"] < full_area["AP"]


def test_crowd_index_splits_and_missing_index(tmp_path):
    splits = crowd_index_splits([{"id": 1, "crowdIndex": 0.19}, {"id": 2, "crowdIndex": 0.2},
                                 {"id": 3, "crowdIndex": 0.79}, {"id": 4, "crowdIndex": 0.8}], "f")
    assert splits == {"easy": [1], "medium": [2, 3], "hard": [4]}
    ann_file = tmp_path / "no_index.json"
    data = _write_crowdpose(ann_file, with_crowd_index=False)
    with pytest.raises(DataError, match="crowdIndex"):
        evaluate_crowdpose(_results(data), ann_file, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
