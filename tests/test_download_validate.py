"""Layout validation on tiny fixtures: the expected counts come from the manifest (or the test)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from vitpose.download import check_counts, is_training_instance, load_manifest, validate_item
from vitpose.download.manifest import ValidateSpec
from vitpose.utils.errors import ConfigError, DataError

COCO_KEYPOINTS, COCO_DETECTIONS = load_manifest().items["coco"].validate
COCO_SPEC = [COCO_KEYPOINTS]


def person(ann_id: int, image_id: int, bbox, num_keypoints: int = 3, iscrowd: int = 0) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox, "iscrowd": iscrowd,
            "num_keypoints": num_keypoints, "keypoints": [10, 10, 2] * num_keypoints + [0, 0, 0] * (17 - num_keypoints)}


def write_coco(root: Path, split: str, n_images: int, anns: list[dict]) -> None:
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": 100, "height": 80} for i in range(n_images)]
    (root / f"{split}2017").mkdir(parents=True, exist_ok=True)
    for im in images:
        (root / f"{split}2017" / im["file_name"]).write_bytes(b"jpeg")
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    write_coco(root, "train", 3, [
        person(1, 1, [10, 10, 20, 30]),
        person(2, 1, [10, 10, 20, 30], iscrowd=1),          # crowd: excluded
        person(3, 2, [10, 10, 20, 30], num_keypoints=0),    # no keypoints: excluded
        person(4, 2, [10, 10, 0, 30]),                      # zero width: excluded
        person(5, 3, [120, 10, 20, 30]),                    # entirely right of a 100 px image: excluded
        person(6, 3, [-5, -5, 20, 30]),                     # partly outside: clipped, kept
    ])
    write_coco(root, "val", 2, [person(7, 1, [1, 1, 5, 5]), person(8, 2, [1, 1, 5, 5])])
    return root


def test_coco_counts_match_expected_from_manifest_spec(tiny_coco: Path) -> None:
    expected = {"train_images": 3, "val_images": 2, "train_instances": 2, "val_instances": 2}
    counts = validate_item(tiny_coco, COCO_SPEC, expected=expected)
    assert counts["train_annotations"] == 6 and counts["train_instances"] == 2


def test_coco_wrong_counts_are_named(tiny_coco: Path) -> None:
    with pytest.raises(DataError, match=r"train_instances = 2 \(expected 149,813\)"):
        validate_item(tiny_coco, COCO_SPEC)  # the manifest's real counts


def test_coco_missing_image_is_reported(tiny_coco: Path) -> None:
    (tiny_coco / "val2017" / "000000000002.jpg").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) referenced by .*person_keypoints_val2017.json are missing"):
        validate_item(tiny_coco, COCO_SPEC, expected={})


def test_coco_missing_annotation_file(tiny_coco: Path) -> None:
    (tiny_coco / "annotations" / "person_keypoints_train2017.json").unlink()
    with pytest.raises(DataError, match="person_keypoints_train2017.json is missing"):
        validate_item(tiny_coco, COCO_SPEC, expected={})


def test_manifest_expected_counts_are_the_reference_numbers() -> None:
    assert COCO_KEYPOINTS.expected == {"train_images": 118287, "val_images": 5000,
                                       "train_instances": 149813, "val_instances": 6352}
    assert COCO_DETECTIONS.expected == {"detection_boxes": 104125}


def test_coco_item_validates_images_instances_and_detections_together(tiny_coco: Path) -> None:
    """The whole `coco` item as the stage runs it, with tiny expected counts in place of the manifest's."""
    det = tiny_coco / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json"
    det.parent.mkdir()
    det.write_text(json.dumps([{"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}]))
    item = load_manifest().items["coco"]
    counts = validate_item(tiny_coco, item.validate, expected={"train_images": 3, "val_images": 2,
                                                               "train_instances": 2, "val_instances": 2,
                                                               "detection_boxes": 1})
    assert counts["detection_image_ids_checked"] == 1
    with pytest.raises(DataError, match=r"detection_boxes = 1 \(expected 104,125\)"):
        validate_item(tiny_coco, item.validate)


def test_detections(tiny_coco: Path) -> None:
    spec = [COCO_DETECTIONS]
    det_dir = tiny_coco
    (det_dir / "person_detection_results").mkdir()
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
            {"image_id": 2, "category_id": 1, "bbox": [5, 2, 3, 4], "score": 0.1}]
    (det_dir / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json").write_text(json.dumps(dets))
    counts = validate_item(det_dir, spec, expected={"detection_boxes": 3})
    assert counts == {"detection_boxes": 3, "detection_images": 2, "detection_image_ids_checked": 1}
    with pytest.raises(DataError, match=r"detection_boxes = 3 \(expected 104,125\)"):
        validate_item(det_dir, spec)
    dets.append({"image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5})
    (det_dir / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json").write_text(json.dumps(dets))
    with pytest.raises(DataError, match="image id.* not in .*person_keypoints_val2017.json"):
        validate_item(det_dir, spec, expected={})
    dets[-1] = {"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}
    (det_dir / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json").write_text(json.dumps(dets))
    with pytest.raises(DataError, match="category_id 3, expected 1"):
        validate_item(det_dir, spec, expected={})


def test_mpii_requires_gt_val_mat(tmp_path: Path) -> None:
    """The real MPII layout (synthetic people written in it): annotations, images and mpii_gt_val.mat."""
    from vitpose.data.synthetic import generate_synthetic_mpii

    spec = load_manifest().items["mpii"].validate
    generate_synthetic_mpii(tmp_path, seed=0, num_train=2, num_val=2, progress=False)
    counts = validate_item(tmp_path, spec, expected={})  # structure only: every key, joint and image
    assert counts["mpii_train_annotations"] >= 2 and counts["mpii_gt_val_people"] == counts["mpii_val_annotations"]
    with pytest.raises(DataError, match="22,246"):  # the paper scale demands the full dataset
        validate_item(tmp_path, spec)
    (tmp_path / "annotations" / "mpii_gt_val.mat").unlink()
    with pytest.raises(DataError, match="mpii_gt_val.mat"):
        validate_item(tmp_path, spec, expected={})


def test_torch_checkpoint_format(tmp_path: Path) -> None:
    spec = [ValidateSpec(kind="torch_checkpoint", options={"files": ["w.pth"]})]
    (tmp_path / "w.pth").write_bytes(b"<html>OneDrive sign-in page</html>")
    with pytest.raises(DataError, match="not a PyTorch checkpoint"):
        validate_item(tmp_path, spec)
    with zipfile.ZipFile(tmp_path / "w.pth", "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert validate_item(tmp_path, spec) == {"files": 1}


def test_imagenet_class_folders(tmp_path: Path) -> None:
    spec = [ValidateSpec(kind="imagenet", options={"train": "train", "val": "val"}, expected={"classes": 2})]
    for split in ("train", "val"):
        for wnid in ("n01", "n02"):
            (tmp_path / split / wnid).mkdir(parents=True)
            (tmp_path / split / wnid / "x.JPEG").write_bytes(b"x")
    assert validate_item(tmp_path, spec)["train_images"] == 2
    (tmp_path / "val" / "n03").mkdir()
    with pytest.raises(DataError, match="class folders differ"):
        validate_item(tmp_path, spec)


def test_expected_count_that_is_not_measured_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not measured"):
        check_counts({"boxes": 1}, {"bogus": 1}, "somewhere")


def test_instance_filter_without_image_size() -> None:
    assert is_training_instance(person(1, 1, [0, 0, 5, 5]), None)
    assert not is_training_instance({"bbox": [0, 0, 5, 5], "keypoints": [0, 0, 0] * 17}, None)
