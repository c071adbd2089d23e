"""MAE pre-training data (Table 3): the set indexes, the MAE-augmented dataset, the CLI, synthetic ImageNet."""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stages._cli import run_main
from stages.pretrain_data import main as pretrain_main
from vitpose.data.dataset import SampleKey
from vitpose.data.pretrain import (
    PRETRAIN_SETS,
    SCHEMA,
    SET_SOURCES,
    CropRule,
    PretrainImageDataset,
    build_index,
    random_resized_crop_params,
    read_index,
    write_index,
)
from vitpose.data.synthetic import AIC_LAYOUT, generate_synthetic_aic, generate_synthetic_coco
from vitpose.data.transforms import sample_rng
from vitpose.download.manifest import ValidateSpec
from vitpose.download.validate import is_training_instance, validate_item
from vitpose.utils.errors import ConfigError, DataError

COCO_ANN, COCO_IMG = "annotations/person_keypoints_train2017.json", "train2017"


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def pose_data(tmp_path_factory) -> dict:
    """Small synthetic COCO and AIC trees and the sources dict of build_index."""
    root = tmp_path_factory.mktemp("pose")
    generate_synthetic_coco(root / "coco", seed=0, num_train=16, num_val=0, image_size=(96, 128), progress=False)
    generate_synthetic_aic(root / "aic", seed=0, num_train=16, num_val=0, image_size=(96, 128), progress=False)
    ann, img = AIC_LAYOUT["train"]
    return {"coco": {"ann": str(root / "coco" / COCO_ANN), "images": str(root / "coco" / COCO_IMG)},
            "aic": {"ann": str(root / "aic" / ann), "images": str(root / "aic" / img)}}


def _jpeg(path: Path, h: int = 60, w: int = 80, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
    cv2.rectangle(img, (w // 8, h // 4), (w // 3, h - 5), (255, 0, 0), -1)  # asymmetric: flips show
    assert cv2.imwrite(str(path), img)


def _ann(i: int, image_id: int, bbox, iscrowd: int = 0, num_keypoints: int = 3) -> dict:
    kpts = [10, 10, 2] * num_keypoints + [0, 0, 0] * (17 - num_keypoints)
    return {"id": i, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": bbox,
            "num_keypoints": num_keypoints, "keypoints": kpts}


@pytest.fixture
def hand_coco(tmp_path) -> dict:
    """A hand-made COCO file: image 1 (200×100) with every excluded kind and two used persons,
    image 2 with a crowd region only, image 3 with one used person."""
    images = [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
              {"id": 2, "file_name": "b.jpg", "width": 80, "height": 60},
              {"id": 3, "file_name": "c.jpg", "width": 80, "height": 60}]
    anns = [
        _ann(1, 1, [170, 20, 28, 60]),              # used: the hand-computed crop below
        _ann(2, 1, [10, 10, 40, 30], iscrowd=1),    # crowd
        _ann(3, 1, [10, 10, 40, 30], num_keypoints=0),  # no labelled keypoint
        _ann(4, 1, [10, 10, 0, 30]),                # zero width
        _ann(5, 1, [10, 10, 6, 30]),                # shorter side 6 px: used unless min_size > 6
        _ann(6, 1, [250, 10, 20, 30]),              # outside the image after clipping
        _ann(7, 2, [0, 0, 80, 60], iscrowd=1),      # image 2: crowd only
        _ann(8, 3, [5, 5, 30, 40]),
    ]
    ann_path = tmp_path / "ann.json"
    ann_path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1}]}))
    _jpeg(tmp_path / "imgs" / "a.jpg", 100, 200)
    _jpeg(tmp_path / "imgs" / "b.jpg")
    _jpeg(tmp_path / "imgs" / "c.jpg")
    return {"coco": {"ann": str(ann_path), "images": str(tmp_path / "imgs")}}


@pytest.fixture
def imagenet_tree(tmp_path) -> Path:
    train = tmp_path / "imagenet" / "train"
    for cls, names in {"n02": ["b.JPEG", "a.jpeg"], "n01": ["z.png", "y.jpg", "notes.txt"], "n03": []}.items():
        (train / cls).mkdir(parents=True)
        for k, n in enumerate(names):
            if n.endswith(".txt"):
                (train / cls / n).write_text("not an image")
            elif n.endswith(".png"):
                assert cv2.imwrite(str(train / cls / n), np.zeros((40, 50, 3), np.uint8))
            else:
                _jpeg(train / cls / n, seed=k)
    return train


def _index_file(tmp_path: Path, doc: dict, name: str = "index.json") -> Path:
    out = tmp_path / name
    write_index(doc, out)
    return out


# ------------------------------------------------------------------------------------------ the sets
def test_interface_constants():
    assert PRETRAIN_SETS == ("imagenet-1k", "coco-crop", "coco+aic-crop", "coco+aic-nocrop")
    assert SET_SOURCES == {"imagenet-1k": ("imagenet",), "coco-crop": ("coco",), "coco+aic-crop": ("coco", "aic"),
                           "coco+aic-nocrop": ("coco", "aic")}
    assert (CropRule().padding, CropRule().aspect_ratio, CropRule().min_size) == (1.25, 0.75, 0.0)


def _used(ann_file: str) -> tuple[int, int]:
    """(persons, images with a person) under the top-down training filter, counted independently."""
    data = json.loads(Path(ann_file).read_text())
    images = {im["id"]: im for im in data["images"]}
    used = [a for a in data["annotations"] if is_training_instance(a, images[a["image_id"]])]
    return len(used), len({a["image_id"] for a in used})


def test_pose_set_counts(pose_data):
    coco_persons, coco_images = _used(pose_data["coco"]["ann"])
    aic_persons, aic_images = _used(pose_data["aic"]["ann"])
    assert coco_persons > coco_images > 0 and aic_persons > aic_images > 0
    crop = build_index("coco-crop", pose_data)
    assert crop["schema"] == SCHEMA and crop["set"] == "coco-crop" and crop["crop"] == {
        "padding": 1.25, "aspect_ratio": 0.75, "min_size": 0.0}
    assert crop["counts"]["images"] == crop["counts"]["coco"] == len(crop["entries"]) == coco_persons
    # the count of the top-down training instances, as the download validation measures it
    spec = ValidateSpec(kind="coco_keypoints", options={"splits": {"train": {"annotations": COCO_ANN,
                                                                             "images": COCO_IMG}}})
    coco_root = Path(pose_data["coco"]["ann"]).parents[1]
    assert validate_item(coco_root, [spec], expected={})["train_instances"] == coco_persons
    both = build_index("coco+aic-crop", pose_data)
    assert (both["counts"]["coco"], both["counts"]["aic"]) == (coco_persons, aic_persons)
    assert both["counts"]["images"] == coco_persons + aic_persons
    assert both["entries"][:coco_persons] == crop["entries"]              # COCO first, then AIC
    assert all(p.startswith(pose_data["aic"]["images"]) for p, _ in both["entries"][coco_persons:])
    whole = build_index("coco+aic-nocrop", pose_data)
    assert (whole["counts"]["coco"], whole["counts"]["aic"]) == (coco_images, aic_images)
    assert all(box is None for _, box in whole["entries"])
    assert len({p for p, _ in whole["entries"]}) == len(whole["entries"]) == coco_images + aic_images
    # every crop lies inside its image
    sizes = {im["file_name"]: (im["width"], im["height"])
             for im in json.loads(Path(pose_data["coco"]["ann"]).read_text())["images"]}
    for path, (x, y, w, h) in crop["entries"]:
        W, H = sizes[Path(path).name]
        assert all(isinstance(v, int) for v in (x, y, w, h))
        assert 0 <= x and 0 <= y and w >= 1 and h >= 1 and x + w <= W and y + h <= H


def test_rule_excludes_crowd_unlabelled_and_tiny_boxes(hand_coco):
    doc = build_index("coco-crop", hand_coco)
    assert [Path(p).name for p, _ in doc["entries"]] == ["a.jpg", "a.jpg", "c.jpg"]  # annotations 1, 5, 8
    assert doc["counts"] == {"images": 3, "coco": 3, "coco_annotations": 8, "coco_source_images": 2}
    strict = build_index("coco-crop", hand_coco, CropRule(min_size=7))
    assert [Path(p).name for p, _ in strict["entries"]] == ["a.jpg", "c.jpg"]     # the 6-px box is out
    assert strict["crop"]["min_size"] == 7.0
    assert build_index("coco-crop", hand_coco, CropRule(min_size=6))["counts"]["images"] == 3  # ≥, not >


def test_crop_box_by_hand(hand_coco):
    """Annotation 1: bbox [170, 20, 28, 60] in a 200×100 image.

    Clipped xyxy (170, 20, 198, 80) → centre (184, 50), size (28, 60) × 1.25 = (35, 75) → widened to
    w/h 0.75: (56.25, 75) → x 184 ± 28.125 = [155.875, 212.125] → clipped to [155.875, 200] → [156, 200];
    y 50 ± 37.5 = [12.5, 87.5] → rounded half up [13, 88]. So [156, 13, 44, 75].
    """
    doc = build_index("coco-crop", hand_coco)
    assert doc["entries"][0] == [str(Path(hand_coco["coco"]["images"]) / "a.jpg"), [156, 13, 44, 75]]
    # padding 1 and aspect 1: size (60, 60) around (184, 50) → x [154, 214] → [154, 200]; y [20, 80]
    square = build_index("coco-crop", hand_coco, CropRule(padding=1.0, aspect_ratio=1.0))
    assert square["entries"][0][1] == [154, 20, 46, 60]


def test_nocrop_counts_images_not_persons(hand_coco):
    doc = build_index("coco+aic-nocrop", {**hand_coco, "aic": hand_coco["coco"]})
    names = [Path(p).name for p, _ in doc["entries"]]
    assert names == ["a.jpg", "c.jpg", "a.jpg", "c.jpg"]  # image 1's two persons give one entry; b: crowd only
    assert doc["counts"]["coco"] == doc["counts"]["aic"] == 2 and doc["counts"]["images"] == 4
    assert doc["entries"][0][1] is None


def test_imagenet_scan_order_and_count(imagenet_tree):
    doc = build_index("imagenet-1k", {"imagenet": {"train": str(imagenet_tree)}})
    rel = [str(Path(p).relative_to(imagenet_tree)) for p, _ in doc["entries"]]
    assert rel == ["n01/y.jpg", "n01/z.png", "n02/a.jpeg", "n02/b.JPEG"]
    assert doc["crop"] is None and all(b is None for _, b in doc["entries"])
    assert doc["counts"] == {"images": 4, "imagenet": 4, "imagenet_classes": 3}


def test_index_round_trip(tmp_path, hand_coco):
    doc = build_index("coco-crop", hand_coco)
    out = _index_file(tmp_path, doc)
    assert read_index(out) == doc
    assert json.loads(out.read_text()) == doc


# ------------------------------------------------------------------------------------------ errors
def test_errors_name_the_offending_path(tmp_path, hand_coco, imagenet_tree):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"^{empty}: empty image folder"):
        build_index("coco-crop", {"coco": {**hand_coco["coco"], "images": str(empty)}})
    with pytest.raises(DataError, match=rf"^{tmp_path / 'nowhere'}: image folder not found"):
        build_index("coco-crop", {"coco": {**hand_coco["coco"], "images": str(tmp_path / "nowhere")}})
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError, match=rf"^{missing}: annotation file not found"):
        build_index("coco-crop", {"coco": {**hand_coco["coco"], "ann": str(missing)}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match=rf"^{bad}: annotation file is not valid JSON"):
        build_index("coco-crop", {"coco": {**hand_coco["coco"], "ann": str(bad)}})
    (Path(hand_coco["coco"]["images"]) / "c.jpg").unlink()
    with pytest.raises(DataError, match=r"imgs: 1 image\(s\) named by .*ann.json are missing .* c.jpg"):
        build_index("coco-crop", hand_coco)
    with pytest.raises(DataError, match=rf"^{hand_coco['coco']['ann']}: no person passes the rule"):
        build_index("coco-crop", hand_coco, CropRule(min_size=1000))
    empty_classes = tmp_path / "train"
    (empty_classes / "n01").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"^{empty_classes}: empty image folder"):
        build_index("imagenet-1k", {"imagenet": {"train": str(empty_classes)}})
    with pytest.raises(ConfigError, match="unknown pre-training set 'coco-crops'; expected one of imagenet-1k"):
        build_index("coco-crops", hand_coco)
    with pytest.raises(ConfigError, match=r"'coco\+aic-crop' is built from coco \+ aic; missing: aic"):
        build_index("coco+aic-crop", hand_coco)
    with pytest.raises(ConfigError, match="padding"):
        CropRule(padding=0.5)


def test_read_index_refuses_other_files(tmp_path, hand_coco):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else/1"}))
    with pytest.raises(DataError, match=rf"^{other}: not a pre-training index"):
        read_index(other)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'none.json'}: pre-training index not found"):
        PretrainImageDataset(tmp_path / "none.json")
    doc = build_index("coco-crop", hand_coco)
    doc["entries"][1][1] = [0, 0, -3, 4]
    out = _index_file(tmp_path, doc)
    with pytest.raises(DataError, match=r"index.json: entries\[1\]"):
        read_index(out)


def test_truncated_image_is_named_with_the_index(tmp_path, imagenet_tree):
    out = _index_file(tmp_path, build_index("imagenet-1k", {"imagenet": {"train": str(imagenet_tree)}}))
    victim = imagenet_tree / "n02" / "a.jpeg"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    ds = PretrainImageDataset(out, input_size=(32, 32))
    ds[0]  # the others still read
    with pytest.raises(DataError, match=rf"^{victim}: image file is corrupt: truncated JPEG.*entry 2 of the "
                                        rf"pre-training index {out}"):
        ds[2]


# ------------------------------------------------------------------------------------------ the dataset
def test_dataset_samples(tmp_path, hand_coco):
    out = _index_file(tmp_path, build_index("coco-crop", hand_coco))
    ds = PretrainImageDataset(out, input_size=(48, 40))
    assert len(ds) == 3 and ds.accepts_sample_keys and ds.describe() == str(out)
    assert ds.entry(0)[1] == [156, 13, 44, 75]
    x = ds[SampleKey(0, 0, 0)]
    assert set(x) == {"img"} and x["img"].shape == (3, 48, 40) and x["img"].dtype == torch.float32
    assert torch.equal(ds[0]["img"], x["img"])                         # int index = seed 0, epoch 0
    assert torch.equal(ds[SampleKey(2, 5, 3)]["img"], ds[SampleKey(2, 5, 3)]["img"])
    assert not torch.equal(ds[SampleKey(2, 5, 3)]["img"], ds[SampleKey(2, 6, 3)]["img"])
    assert not torch.equal(ds[SampleKey(2, 5, 3)]["img"], ds[SampleKey(2, 5, 4)]["img"])
    # the draws are sample_rng(seed, epoch, index)'s: RandomResizedCrop, then the flip
    rng = sample_rng(3, 5, 2)
    crop = random_resized_crop_params(75, 44, (0.2, 1.0), (3 / 4, 4 / 3), rng)
    assert ds.sample_params(SampleKey(2, 5, 3), 75, 44) == (crop, bool(rng.random() < 0.5))
    # values: normalised uint8 (ImageNet mean/std) -> within [-mean/std, (1-mean)/std]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    lo, hi = torch.tensor(-mean / std).view(3, 1, 1), torch.tensor((1 - mean) / std).view(3, 1, 1)
    assert bool(((x["img"] >= lo.float() - 1e-5) & (x["img"] <= hi.float() + 1e-5)).all())


def test_flip_happens_for_some_keys_only(tmp_path, hand_coco):
    out = _index_file(tmp_path, build_index("coco-crop", hand_coco))
    ds, plain = PretrainImageDataset(out, input_size=(32, 32)), PretrainImageDataset(out, (32, 32), hflip=False)
    keys = [SampleKey(i % 3, e, 0) for e in range(8) for i in range(3)]
    flips = [ds.sample_params(k, 75, 44)[1] for k in keys]
    assert any(flips) and not all(flips)
    assert not any(plain.sample_params(k, 75, 44)[1] for k in keys)
    seen = set()
    for key in keys[:12]:  # hflip draws the same crop; the flipped samples are its mirror image
        a, b = ds[key]["img"], plain[key]["img"]
        ds_flip = ds.sample_params(key, *_region_size(ds, key.index))[1]
        assert torch.equal(a, b.flip(-1) if ds_flip else b)
        assert not torch.equal(a, b) if ds_flip else True
        seen.add(ds_flip)
    assert seen == {True, False}


def _region_size(ds: PretrainImageDataset, index: int) -> tuple[int, int]:
    box = ds.entry(index)[1]
    return box[3], box[2]


def test_random_resized_crop_params():
    rng = np.random.default_rng(0)
    H, W = 300, 200
    for _ in range(2000):
        top, left, h, w = random_resized_crop_params(H, W, (0.2, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= top and 0 <= left and top + h <= H and left + w <= W and h >= 1 and w >= 1
        # area within (0.2, 1.0) of the source and aspect within (3/4, 4/3), up to the rounding to pixels
        assert 0.2 * (1 - 0.02) <= h * w / (H * W) <= 1.0
        assert 3 / 4 * (1 - 0.02) <= w / h <= 4 / 3 * (1 + 0.02)
    # no try can fit in a 10×1000 strip: the central crop, its aspect clamped to 4/3
    assert random_resized_crop_params(10, 1000, (0.2, 1.0), (3 / 4, 4 / 3), rng) == (0, 493, 10, 13)
    assert random_resized_crop_params(1000, 10, (0.2, 1.0), (3 / 4, 4 / 3), rng) == (493, 0, 13, 10)
    # deterministic in the generator
    a = [random_resized_crop_params(H, W, (0.2, 1.0), (3 / 4, 4 / 3), sample_rng(1, 2, i)) for i in range(5)]
    assert a == [random_resized_crop_params(H, W, (0.2, 1.0), (3 / 4, 4 / 3), sample_rng(1, 2, i)) for i in range(5)]


def test_dataloader_passes_sample_keys(tmp_path, pose_data):
    from vitpose.data.loader import build_dataloader

    out = _index_file(tmp_path, build_index("coco+aic-nocrop", pose_data))
    ds = PretrainImageDataset(out, input_size=(32, 32))
    loader = build_dataloader(ds, batch_size=4, shuffle=True, num_workers=0, seed=5, drop_last=True, epoch=2)
    batch = next(iter(loader))["img"]
    first = next(iter(loader.sampler))
    assert first == SampleKey(first.index, 2, 5) and torch.equal(batch[0], ds[first]["img"])


# ------------------------------------------------------------------------------------------ the CLI
def test_cli_writes_the_index(tmp_path, pose_data, capsys):
    out = tmp_path / "idx" / "coco+aic-crop.json"
    rc = run_main(pretrain_main, ["coco+aic-crop", "--out", str(out), "--coco", *pose_data["coco"].values(),
                                  "--aic", *pose_data["aic"].values(), "--padding", "1.5", "--min-size", "4"])
    assert rc == 0
    doc = read_index(out)
    assert doc == build_index("coco+aic-crop", pose_data, CropRule(padding=1.5, min_size=4))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"coco+aic-crop: {doc['counts']['images']:,} images (coco ")


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, pose_data, capsys):
    out = tmp_path / "x.json"
    cases = [
        (["coco+aic-crop", "--out", str(out), "--coco", *pose_data["coco"].values()], "give --aic ANN IMAGES"),
        (["coco-crop", "--out", str(out), "--coco", *pose_data["coco"].values(), "--imagenet", str(tmp_path)],
         "does not use --imagenet"),
        (["coco-crop", "--out", str(out), "--coco", pose_data["coco"]["ann"], str(tmp_path)],
         f"{tmp_path}: empty image folder"),
        (["imagenet-1k", "--out", str(out), "--imagenet", str(tmp_path / "no")], "ImageNet train folder not found"),
        (["coco-crop", "--out", str(out), "--coco", *pose_data["coco"].values(), "--padding", "0.9"], "padding"),
    ]
    for argv, message in cases:
        assert run_main(pretrain_main, argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, err
        assert not out.exists() and not list(tmp_path.glob(".x.json*"))
    with pytest.raises(SystemExit) as exc:  # argparse: an unknown set
        pretrain_main(["coco-crops", "--out", str(out)])
    assert exc.value.code == 2 and not out.exists()


# ------------------------------------------------------------------------------------------ synthetic ImageNet
def test_synthetic_imagenet_layout_and_determinism(tmp_path):
    from vitpose.data.synthetic import GENERATORS, generate_synthetic_imagenet

    assert GENERATORS["imagenet"] is generate_synthetic_imagenet
    t0 = time.perf_counter()
    s = generate_synthetic_imagenet(tmp_path / "a", seed=3, num_train=200, num_val=40, progress=False)
    assert time.perf_counter() - t0 < 5.0
    assert s["classes"] == 10 and s["splits"]["train"]["per_class"] == [20] * 10
    for split, n in (("train", 200), ("val", 40)):
        classes = sorted(p.name for p in (tmp_path / "a" / split).iterdir())
        assert classes == s["class_names"] and len(classes) == 10
        files = sorted((tmp_path / "a" / split).rglob("*.JPEG"))
        assert len(files) == n
    img = cv2.imread(str(next((tmp_path / "a" / "train" / "c000-disc").iterdir())))
    assert img.shape == (96, 128, 3) and img.std() > 10
    generate_synthetic_imagenet(tmp_path / "b", seed=3, num_train=12, num_val=2, num_classes=4,
                                image_size="64x80", progress=False)
    c0 = tmp_path / "b" / "train" / "c000-disc" / "c000-disc_000000.JPEG"
    assert cv2.imread(str(c0)).shape == (64, 80, 3)
    generate_synthetic_imagenet(tmp_path / "c", seed=3, num_train=12, num_val=2, num_classes=4,
                                image_size=(64, 80), progress=False)
    generate_synthetic_imagenet(tmp_path / "d", seed=4, num_train=12, num_val=2, num_classes=4,
                                image_size=(64, 80), progress=False)
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.JPEG")}
    c = {p.relative_to(tmp_path / "c"): p.read_bytes() for p in (tmp_path / "c").rglob("*.JPEG")}
    d = {p.relative_to(tmp_path / "d"): p.read_bytes() for p in (tmp_path / "d").rglob("*.JPEG")}
    assert b == c and b.keys() == d.keys() and all(b[k] != d[k] for k in b)
    # val with fewer images than classes still lists every class
    assert len(list((tmp_path / "b" / "val").iterdir())) == 4
    with pytest.raises(ConfigError, match="num_classes"):
        generate_synthetic_imagenet(tmp_path / "e", num_classes=0, progress=False)


def test_imagenet_smoke_download_end_to_end(tmp_path, capsys):
    from stages.download import main as download_main

    root = tmp_path / "data"
    assert download_main(["imagenet", "--scale", "smoke", "--data-root", str(root), "--seed", "0",
                          "--num-train", "30", "--num-val", "10", "--synthetic-arg", "progress=false"]) == 0
    marker = json.loads((root / "imagenet" / ".complete.json").read_text())
    assert marker["counts"] == {"train_images": 30, "val_images": 10, "classes": 10}
    assert marker["synthetic"] is True
    assert download_main(["imagenet", "--scale", "smoke", "--data-root", str(root), "--seed", "0",
                          "--num-train", "6", "--num-val", "3", "--synthetic-arg", "num_classes=3",
                          "--synthetic-arg", "progress=false"]) == 0
    marker = json.loads((root / "imagenet" / ".complete.json").read_text())
    assert marker["counts"] == {"train_images": 6, "val_images": 3, "classes": 3}
    # the generated tree is what the imagenet-1k set reads
    doc = build_index("imagenet-1k", {"imagenet": {"train": str(root / "imagenet" / "train")}})
    assert doc["counts"]["images"] == 6 and doc["counts"]["imagenet_classes"] == 3
    assert download_main(["--list", "--data-root", str(root)]) == 0
    assert "imagenet" in capsys.readouterr().out
