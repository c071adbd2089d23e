"""The synthetic COCO-format dataset: determinism, layout, annotation validity, realism features,
and that every labelled keypoint is visible in the picture where the annotation says it is."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO as CocoApi

from vitpose.data.keypoints import COCO
from vitpose.data.synthetic import (DET_FILE, JOINT_TYPE_COLOURS, generate_synthetic_coco, joint_type,
                                    main)
from vitpose.utils.errors import ConfigError

LAYOUT = [
    "annotations/person_keypoints_train2017.json",
    "annotations/person_keypoints_val2017.json",
    f"person_detection_results/{DET_FILE}",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate_synthetic_coco(root, seed=0, num_train=60, num_val=30, progress=False)
    return root, summary


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(root: Path, split: str) -> dict:
    return json.loads((root / f"annotations/person_keypoints_{split}2017.json").read_text())


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate_synthetic_coco(tmp_path / "a", seed=3, num_train=4, num_val=3, progress=False)
    generate_synthetic_coco(tmp_path / "b", seed=3, num_train=4, num_val=3, progress=False)
    generate_synthetic_coco(tmp_path / "c", seed=4, num_train=4, num_val=3, progress=False)
    a, b, c = (_files(tmp_path / d) for d in "abc")
    assert len(a) == 4 + 3 + 3 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k.endswith(".jpg"))


def test_val_split_does_not_depend_on_train_size(tmp_path):
    generate_synthetic_coco(tmp_path / "a", seed=0, num_train=2, num_val=2, progress=False)
    generate_synthetic_coco(tmp_path / "b", seed=0, num_train=5, num_val=2, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert all(a[k] == b[k] for k in a if "val" in k or "detection" in k)


def test_layout_and_pycocotools_load(synth):
    root, summary = synth
    for rel in LAYOUT:
        assert (root / rel).is_file(), rel
    for split, n in (("train", 60), ("val", 30)):
        data = _load(root, split)
        assert len(data["images"]) == n == summary["splits"][split]["images"]
        for img in data["images"]:
            image = cv2.imread(str(root / f"{split}2017" / img["file_name"]))
            assert image.shape == (img["height"], img["width"], 3) == (256, 320, 3)
        api = CocoApi(str(root / f"annotations/person_keypoints_{split}2017.json"))
        assert api.getCatIds() == [1]


def test_annotations_are_valid_coco_keypoints(synth):
    root, _ = synth
    ids = set()
    for split in ("train", "val"):
        data = _load(root, split)
        image_ids = {img["id"] for img in data["images"]}
        for ann in data["annotations"]:
            assert ann["id"] > 0 and ann["id"] not in ids
            ids.add(ann["id"])
            assert ann["image_id"] in image_ids and ann["category_id"] == 1
            assert ann["iscrowd"] in (0, 1) and ann["area"] > 0
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 320 and y + h <= 256
            k = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
            assert k.shape == (17, 3) and set(np.unique(k[:, 2])) <= {0, 1, 2}
            assert ann["num_keypoints"] == int((k[:, 2] > 0).sum())
            assert np.all(k[k[:, 2] == 0] == 0)                      # unlabelled: (0, 0, 0)
            lab = k[k[:, 2] > 0]
            assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= 319) & (lab[:, 1] >= 0) & (lab[:, 1] <= 255))
            if ann["iscrowd"]:
                assert ann["num_keypoints"] == 0 and set(ann["segmentation"]) == {"counts", "size"}


def test_dataset_has_the_realism_features(synth):
    root, summary = synth
    anns = _load(root, "train")["annotations"] + _load(root, "val")["annotations"]
    v = np.concatenate([np.array(a["keypoints"]).reshape(-1, 3)[:, 2] for a in anns if a["num_keypoints"]])
    labelled = [a for a in anns if a["num_keypoints"] > 0]
    assert (v == 1).sum() > 0.02 * v.size                             # occlusion
    assert any((np.array(a["keypoints"][2::3]) == 0).any() for a in labelled)  # truncation
    assert any(a["iscrowd"] for a in anns)
    assert any(not a["iscrowd"] and a["num_keypoints"] == 0 for a in anns)
    counts = [summary["splits"][s] for s in ("train", "val")]
    assert sum(c["empty_images"] for c in counts) > 0
    persons_per_image = {}
    for a in labelled:
        persons_per_image[a["image_id"]] = persons_per_image.get(a["image_id"], 0) + 1
    assert max(persons_per_image.values()) >= 3
    heights = [a["bbox"][3] for a in labelled]
    assert min(heights) < 100 and max(heights) > 180                  # varied sizes


def test_people_face_the_camera(synth):
    """The person's left is on the image's right: left/right is decided by geometry."""
    root, _ = synth
    n = 0
    for ann in _load(root, "train")["annotations"]:
        k = np.array(ann["keypoints"]).reshape(-1, 3)
        for left, right in [(5, 6), (11, 12), (1, 2)]:
            if k[left, 2] > 0 and k[right, 2] > 0:
                assert k[left, 0] > k[right, 0], (ann["id"], left)
                n += 1
    assert n > 100


def test_labelled_keypoints_show_their_joint_type_colour(synth):
    """At each visible (v=2) keypoint the image shows the marker colour of that joint type, and left
    and right counterparts share one colour (so only geometry tells them apart)."""
    root, _ = synth
    data = _load(root, "train")
    images = {i["id"]: cv2.imread(str(root / "train2017" / i["file_name"]))[..., ::-1].astype(int)
              for i in data["images"]}
    errors = []
    for ann in data["annotations"]:
        for k, (x, y, v) in enumerate(np.array(ann["keypoints"]).reshape(-1, 3)):
            if v == 2:
                colour = JOINT_TYPE_COLOURS[joint_type(COCO.keypoint_names[k])]
                errors.append(np.abs(images[ann["image_id"]][int(round(y)), int(round(x))] - colour).max())
    errors = np.array(errors)
    assert errors.size > 500
    assert np.median(errors) < 20 and np.mean(errors < 40) > 0.9
    assert joint_type("left_knee") == joint_type("right_knee") == "knee"


def test_detection_file_format_and_simulated_errors(synth):
    root, summary = synth
    dets = json.loads((root / "person_detection_results" / DET_FILE).read_text())
    val = _load(root, "val")
    image_ids = {i["id"] for i in val["images"]}
    assert isinstance(dets, list) and len(dets) == summary["detections"] > 0
    for d in dets:
        assert set(d) == {"image_id", "category_id", "bbox", "score"}
        assert d["image_id"] in image_ids and d["category_id"] == 1 and 0 < d["score"] <= 1
        x, y, w, h = d["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 320 and y + h <= 256
    gts = [a for a in val["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]

    def iou(a, b):
        ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)

    best_gt = [max([iou(d["bbox"], g["bbox"]) for g in gts if g["image_id"] == d["image_id"]] or [0])
               for d in dets]
    best_det = [max([iou(d["bbox"], g["bbox"]) for d in dets if d["image_id"] == g["image_id"]] or [0])
                for g in gts]
    assert np.mean(np.array(best_det) > 0.5) > 0.8                     # most people are found ...
    assert min(best_det) < 0.5                                         # ... some are missed ...
    assert any(b < 0.1 for b in best_gt)                               # ... and false positives
    assert all(d["bbox"] != g["bbox"] for d in dets for g in gts)      # boxes are jittered


def test_bad_arguments_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="num_train"):
        generate_synthetic_coco(tmp_path, num_train=-1, num_val=1, progress=False)
    with pytest.raises(ConfigError, match="image_size"):
        generate_synthetic_coco(tmp_path, num_train=1, num_val=1, image_size=(32, 32), progress=False)
    assert not any(tmp_path.iterdir())


def test_cli(tmp_path):
    cmd = [sys.executable, "-m", "vitpose.data.synthetic", "--root", str(tmp_path / "d"), "--seed", "1",
           "--num-train", "2", "--num-val", "1", "--no-progress"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["splits"]["val"]["images"] == 1
    assert all((tmp_path / "d" / rel).is_file() for rel in LAYOUT)


def test_cli_user_error_exits_2(tmp_path, capsys):
    code = main(["--root", str(tmp_path), "--num-train", "-3", "--num-val", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "num_train" in err
