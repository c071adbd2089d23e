"""stages.predict on a folder of synthetic images: COCO results, drawn images, boxes, detector, errors."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from stages._cli import run_main
from stages.predict import main as predict_main
from vitpose.data.synthetic import DET_FILE, generate_synthetic_coco
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import save_vitpose_checkpoint

TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=16)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three synthetic val images with their detection file, and a tiny model's checkpoint."""
    root = tmp_path_factory.mktemp("predict")
    generate_synthetic_coco(root / "data", num_train=1, num_val=3, image_size=(96, 128), progress=False)
    torch.manual_seed(0)
    save_vitpose_checkpoint(build_model(ModelConfig(**TINY)), root / "tiny.pth")
    return {"root": root, "images": root / "data" / "val2017", "ckpt": root / "tiny.pth",
            "dets": root / "data" / "person_detection_results" / DET_FILE}


def predict(world, out, *extra):
    return run_main(predict_main, ["--checkpoint", str(world["ckpt"]), "--out", str(out), "--no-progress",
                                   "--batch", "2", *map(str, extra)])


def test_whole_image_boxes_give_valid_coco_results_and_drawn_images(world, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict(world, out, "--images", world["images"], "--keypoint-threshold", 0) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"images": 3, "boxes": 3, "poses": 3, "images_without_pose": 0, "out": str(out)}

    coco = COCO(str(out / "images.json"))            # the two files make a COCO pair
    results = coco.loadRes(str(out / "keypoints.json"))
    assert sorted(results.getImgIds()) == [2000001, 2000002, 2000003]  # ids from the numeric names
    for ann in results.anns.values():
        assert len(ann["keypoints"]) == 3 * 17 and ann["category_id"] == 1 and 0 <= ann["score"] <= 1

    inputs = sorted(world["images"].iterdir())
    assert sorted(p.name for p in (out / "drawn").iterdir()) == [p.name for p in inputs]
    for src in inputs:
        before, after = cv2.imread(str(src)), cv2.imread(str(out / "drawn" / src.name))
        assert before.shape == after.shape
        assert np.abs(before.astype(int) - after.astype(int)).max() > 100  # lines and discs, not JPEG noise


def test_detection_file_boxes_and_a_single_image(world, tmp_path, capsys):
    image = world["images"] / "000002000001.jpg"
    assert predict(world, tmp_path / "out", "--images", image, "--boxes", world["dets"], "--no-flip") == 0
    dets = [d for d in json.loads(world["dets"].read_text()) if d["image_id"] == 2000001]
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 1 and summary["boxes"] == len(dets) and 1 <= summary["poses"] <= len(dets)
    assert {r["image_id"] for r in json.loads((tmp_path / "out" / "keypoints.json").read_text())} == {2000001}


def test_detector_with_no_person_gives_no_pose_and_says_so(world, tmp_path, capsys):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    detector = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    torch.save(detector.state_dict(), tmp_path / "det.pth")
    # a randomly initialised detector scores every class about 1/91: no person reaches 0.5
    assert predict(world, tmp_path / "out", "--images", world["images"], "--detector", tmp_path / "det.pth",
                   "--detector-arch", "ssdlite320_mobilenet_v3_large") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["boxes"] == 0 and summary["poses"] == 0 and summary["images_without_pose"] == 3
    assert json.loads((tmp_path / "out" / "keypoints.json").read_text()) == []
    src = world["images"] / "000002000001.jpg"
    drawn = cv2.imread(str(tmp_path / "out" / "drawn" / src.name))
    assert not np.array_equal(drawn, cv2.imread(str(src)))  # labelled "no person detected"

    # weights of another detector: an error naming the file
    assert predict(world, tmp_path / "out2", "--images", world["images"], "--detector", tmp_path / "det.pth") == 2
    assert "det.pth: not the weights of torchvision's fasterrcnn_resnet50_fpn" in capsys.readouterr().err


def test_corrupt_image_fails_naming_it_and_writes_nothing(world, tmp_path, capsys):
    folder = tmp_path / "images"
    shutil.copytree(world["images"], folder)
    data = (folder / "000002000002.jpg").read_bytes()
    (folder / "000002000002.jpg").write_bytes(data[: len(data) // 2])
    assert predict(world, tmp_path / "out", "--images", folder) == 2
    assert "000002000002.jpg: image file is corrupt: truncated JPEG" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, needle", [
    (["--model", "vitpose-s"], "tiny.pth: backbone.pos_embed has shape [1, 13, 32] in the file but [1, 13, 384] in the model"),
    (["--keypoints", "aic"], "--keypoints aic: 14 keypoints, but the model predicts 17"),
])
def test_checkpoint_of_another_architecture_fails_naming_it(world, tmp_path, capsys, args, needle):
    assert predict(world, tmp_path / "out", "--images", world["images"], *args) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_inputs_are_named(world, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert predict(world, tmp_path / "out", "--images", tmp_path / "empty") == 2
    assert "empty: no image files" in capsys.readouterr().err
    other = tmp_path / "dets.json"
    other.write_text(json.dumps([{"image_id": 7, "bbox": [0, 0, 5, 5], "score": 1}]))
    assert predict(world, tmp_path / "out", "--images", world["images"], "--boxes", other) == 2
    assert "dets.json: none of its 1 detections refers to an input image" in capsys.readouterr().err
    mae = tmp_path / "mae.pth"
    torch.save({"model": {}}, mae)
    assert run_main(predict_main, ["--checkpoint", str(mae), "--images", str(world["images"])]) == 2
    assert "mae.pth: an MAE pre-training checkpoint" in capsys.readouterr().err
