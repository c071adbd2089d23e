"""Synthetic AIC / MPII / CrowdPose in their native layouts: files, determinism, the real structure of
mpii_gt_val.mat, crowd indices, the smoke path of the download stage and the manifest's layout checks."""
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from vitpose.data.formats import MPII_MAT_JOINTS
from vitpose.data.synthetic import (CROWDPOSE_DET_FILE, crowd_index, generate_synthetic_aic,
                                    generate_synthetic_crowdpose, generate_synthetic_mpii, main)
from vitpose.download import PrepareOptions, load_manifest, prepare_item, read_marker, validate_item
from vitpose.download.manifest import ValidateSpec
from vitpose.utils.errors import DataError

# The full checks validate_mpii / validate_coco_keypoints offer for the real datasets (docs/DATA.md).
MPII_STRICT = ValidateSpec(kind="mpii", options={
    "images": "images", "annotations": ["annotations/mpii_train.json", "annotations/mpii_val.json"],
    "files": ["annotations/mpii_gt_val.mat"], "joints": 16, "gt_mat": "annotations/mpii_gt_val.mat",
    "gt_for": "annotations/mpii_val.json"},
    expected={"mpii_train_annotations": 22246, "mpii_val_annotations": 2958, "mpii_gt_val_people": 2958})

AIC_FILES = ["annotations/aic_train.json", "annotations/aic_val.json"]
MPII_FILES = ["annotations/mpii_train.json", "annotations/mpii_val.json", "annotations/mpii_gt_val.mat"]
CROWDPOSE_FILES = ["annotations/mmpose_crowdpose_trainval.json", "annotations/mmpose_crowdpose_test.json",
                   CROWDPOSE_DET_FILE]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("gen,files", [(generate_synthetic_aic, AIC_FILES), (generate_synthetic_mpii, MPII_FILES),
                                       (generate_synthetic_crowdpose, CROWDPOSE_FILES)])
def test_layout_and_determinism(tmp_path, gen, files):
    a = gen(tmp_path / "a", seed=5, num_train=3, num_val=2, image_size=(96, 128), progress=False)
    gen(tmp_path / "b", seed=5, num_train=3, num_val=2, image_size=(96, 128), progress=False)
    for rel in files:
        assert (tmp_path / "a" / rel).is_file(), rel
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert sum(1 for k in _files(tmp_path / "a") if k.endswith(".jpg")) == 5
    assert a["splits"]["train"]["images"] == 3 and a["splits"]["val"]["persons"] > 0


def test_aic_annotations_are_openmmlab_style(tmp_path):
    generate_synthetic_aic(tmp_path, seed=0, num_train=3, num_val=2, image_size=(96, 128), progress=False)
    data = json.loads((tmp_path / "annotations/aic_train.json").read_text())
    ann = data["annotations"][0]
    assert set(ann) == {"id", "image_id", "category_id", "bbox", "num_keypoints", "keypoints"}   # no iscrowd/area
    assert len(ann["keypoints"]) == 42 and len(data["categories"][0]["keypoints"]) == 14
    assert all(len(Path(im["file_name"]).stem) == 40 for im in data["images"])


def test_mpii_gt_mat_has_the_real_structure(tmp_path):
    generate_synthetic_mpii(tmp_path, seed=0, num_train=2, num_val=4, image_size=(96, 128), progress=False)
    val = json.loads((tmp_path / "annotations/mpii_val.json").read_text())
    assert set(val[0]) == {"image", "center", "scale", "joints", "joints_vis"}
    mat = loadmat(str(tmp_path / "annotations/mpii_gt_val.mat"))
    n = len(val)
    assert mat["pos_gt_src"].shape == (16, 2, n) and mat["jnt_missing"].shape == (16, n)
    assert mat["headboxes_src"].shape == (2, 2, n) and mat["dataset_joints"].shape == (1, 16)
    assert [str(np.asarray(x).ravel()[0]) for x in mat["dataset_joints"].ravel()] == list(MPII_MAT_JOINTS)
    # mmpose's own lookup works on the file: np.where(dataset_joints == 'head')[1][0]
    assert np.where(mat["dataset_joints"] == "head")[1][0] == 9
    joints = np.array([e["joints"] for e in val])                       # (N, 16, 2), 1-based
    np.testing.assert_array_equal(mat["pos_gt_src"].transpose(2, 0, 1), joints)
    np.testing.assert_array_equal(1 - mat["jnt_missing"].T, np.array([e["joints_vis"] for e in val]))
    heads = mat["headboxes_src"]
    assert np.all(heads[1] > heads[0])                                   # [0] top-left, [1] bottom-right


def test_crowd_index_definition():
    a = np.array([[10, 10, 2], [20, 20, 2], [0, 0, 0]], float)
    b = np.array([[15, 15, 2], [90, 90, 2], [91, 91, 1]], float)
    # a's box holds 1 of b's joints (1/2); b's box holds both of a's (2/3).
    assert crowd_index([a, b], [[5, 5, 20, 20], [10, 10, 90, 90]]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert crowd_index([], []) == 0.0


def test_crowdpose_images_have_crowd_index_and_detections(tmp_path):
    s = generate_synthetic_crowdpose(tmp_path, seed=0, num_train=3, num_val=3, image_size=(96, 128), progress=False)
    test = json.loads((tmp_path / "annotations/mmpose_crowdpose_test.json").read_text())
    assert all("crowdIndex" in im for im in test["images"])
    assert all(a["iscrowd"] == 0 and "area" not in a for a in test["annotations"])
    dets = json.loads((tmp_path / CROWDPOSE_DET_FILE).read_text())
    assert len(dets) == s["detections"] and {d["image_id"] for d in dets} <= {im["id"] for im in test["images"]}
    assert sum(s["splits"]["val"]["crowd_levels"].values()) == 3


@pytest.mark.parametrize("item", ["aic", "mpii", "crowdpose"])
def test_smoke_scale_of_the_download_stage(tmp_path, item):
    """prepare_item at smoke scale calls the manifest's generator and validates with the item's checks."""
    result = prepare_item(load_manifest().items[item], PrepareOptions(
        data_root=tmp_path, scale="smoke",
        smoke_params={"seed": 0, "num_train": 2, "num_val": 2, "image_size": "96x128", "progress": False}))
    marker = read_marker(result.marker)
    assert marker["synthetic"] is True and marker["counts"]


def test_mpii_layout_checks(tmp_path):
    """The full mpii checks: 16 joints per entry, a well-formed .mat with one person per val entry."""
    spec = [MPII_STRICT]
    generate_synthetic_mpii(tmp_path, seed=0, num_train=2, num_val=3, image_size=(96, 128), progress=False)
    counts = validate_item(tmp_path, spec, expected={})
    n_val = len(json.loads((tmp_path / "annotations/mpii_val.json").read_text()))
    assert counts["mpii_gt_val_people"] == counts["mpii_val_annotations"] == n_val
    with pytest.raises(DataError, match=r"mpii_train_annotations = \d+ \(expected 22,246\)"):
        validate_item(tmp_path, spec)                        # the real dataset's counts
    val_path = tmp_path / "annotations/mpii_val.json"
    val = json.loads(val_path.read_text())
    val_path.write_text(json.dumps(val[:-1]))
    with pytest.raises(DataError, match=r"mpii_gt_val.mat holds \d+ people but .*mpii_val.json has"):
        validate_item(tmp_path, spec, expected={})
    val[0]["joints"] = val[0]["joints"][:15]
    val_path.write_text(json.dumps(val))
    with pytest.raises(DataError, match=r"mpii_val.json: annotation #0 .*joints of length 15; expected 16"):
        validate_item(tmp_path, spec, expected={})
    val_path.write_text(json.dumps(json.loads((tmp_path / "annotations/mpii_train.json").read_text())[:0]))
    (tmp_path / "annotations/mpii_gt_val.mat").write_bytes(b"MATLAB")
    with pytest.raises(DataError, match=r"mpii_gt_val.mat: not a readable MATLAB file"):
        validate_item(tmp_path, spec, expected={})
    (tmp_path / "annotations/mpii_gt_val.mat").unlink()
    with pytest.raises(DataError, match="mpii_gt_val.mat"):
        validate_item(tmp_path, spec, expected={})


def test_coco_style_layout_checks_keypoints_and_crowd_index(tmp_path):
    base = load_manifest().items["crowdpose"].validate[0]
    crowd = [ValidateSpec(kind=base.kind, options={**base.options, "keypoints": 14, "image_keys": ["crowdIndex"]})]
    generate_synthetic_crowdpose(tmp_path, seed=0, num_train=2, num_val=2, image_size=(96, 128), progress=False)
    assert validate_item(tmp_path, crowd, expected={})["test_images"] == 2
    path = tmp_path / "annotations/mmpose_crowdpose_test.json"
    data = json.loads(path.read_text())
    del data["images"][1]["crowdIndex"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"mmpose_crowdpose_test.json: images\[1\] lacks key\(s\) crowdIndex"):
        validate_item(tmp_path, crowd, expected={})
    data["images"][1]["crowdIndex"] = 0.1
    data["annotations"][0]["keypoints"] += [1.0, 1.0, 2]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotation #0 \(id \d+\) has 45 keypoint values; expected 3 × 14"):
        validate_item(tmp_path, crowd, expected={})


def test_command_line_writes_any_format(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "--dataset", "mpii", "--num-train", "1", "--num-val", "1",
                 "--image-size", "96x128", "--no-progress"]) == 0
    assert (tmp_path / "annotations/mpii_gt_val.mat").is_file()
    assert json.loads(capsys.readouterr().out)["splits"]["val"]["images"] == 1
