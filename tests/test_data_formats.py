"""AIC / CrowdPose / MPII loaders: synthetic files and hand-written files in the real formats, mmpose's
defaults for missing keys, the MPII center/scale box rule, bad input, and the multi-dataset wrapper."""
import json

import cv2
import numpy as np
import pytest
import torch

from vitpose.data.dataset import TopDownCocoDataset
from vitpose.data.keypoints import AIC, COCO, CROWDPOSE, MPII
from vitpose.data.loader import build_dataloader
from vitpose.data.mpii import TopDownMpiiDataset, mpii_box
from vitpose.data.multi import MultiTopDownDataset, build_topdown_dataset
from vitpose.data.synthetic import (generate_synthetic_aic, generate_synthetic_coco, generate_synthetic_crowdpose,
                                    generate_synthetic_mpii)
from vitpose.utils.errors import ConfigError, DataError

IN, HM = (64, 48), (16, 12)
SAMPLE_KEYS = {"img", "target", "target_weight", "center", "scale", "rotation", "image_id", "bbox_score",
               "flipped"}
AIC_IMG = "ai_challenger_keypoint_{}/keypoint_{}_images_{}"
AIC_DIRS = {"train": AIC_IMG.format("train_20170902", "train", "20170902"),
            "val": AIC_IMG.format("validation_20170911", "validation", "20170911")}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("formats")
    gens = {"coco": generate_synthetic_coco, "aic": generate_synthetic_aic, "mpii": generate_synthetic_mpii,
            "crowdpose": generate_synthetic_crowdpose}
    for name, gen in gens.items():
        gen(base / name, seed=2, num_train=4, num_val=3, image_size=(96, 128), progress=False)
    return base


def _build(roots, name, split="train", **kw):
    r = roots / name
    files = {
        "coco": (f"annotations/person_keypoints_{split}2017.json", f"{split}2017"),
        "aic": (f"annotations/aic_{split}.json", AIC_DIRS[split]),
        "mpii": (f"annotations/mpii_{split}.json", "images"),
        "crowdpose": (f"annotations/mmpose_crowdpose_{'trainval' if split == 'train' else 'test'}.json", "images"),
    }[name]
    kw.setdefault("train", split == "train")
    return build_topdown_dataset(name, r / files[0], r / files[1], input_size=IN, heatmap_size=HM, **kw)


@pytest.mark.parametrize("name,meta", [("aic", AIC), ("mpii", MPII), ("crowdpose", CROWDPOSE), ("coco", COCO)])
def test_synthetic_files_load_with_the_coco_sample_layout(roots, name, meta):
    for split in ("train", "val"):
        ds = _build(roots, name, split)
        assert len(ds) > 0 and ds.meta is meta and ds.name == name
        s = ds[0]
        assert set(s) == SAMPLE_KEYS
        assert s["img"].shape == (3, *IN) and s["target"].shape == (meta.num_keypoints, *HM)
        assert s["target_weight"].shape == (meta.num_keypoints,) and s["image_id"].dtype == torch.int64
        # Targets peak where the annotation says the keypoints are.
        assert float(s["target"].amax()) > 0.9
    s = _build(roots, name, "train", dataset_index=3)[1]
    assert set(s) == SAMPLE_KEYS | {"dataset_index"} and int(s["dataset_index"]) == 3


def test_same_people_as_coco_and_mpii_coordinates_are_converted_from_1_based(roots):
    """Scene i of a split holds the COCO generator's people; MPII's 1-based joints, read back 0-based,
    are exactly the COCO annotation's (not one pixel off)."""
    coco, mpii, aic = _build(roots, "coco", "val"), _build(roots, "mpii", "val"), _build(roots, "aic", "val")
    names = ("left_shoulder", "right_knee", "left_wrist")
    checked = 0
    for other in (mpii, aic):
        for inst in other.instances:
            for name in names:
                k = other.meta.index(name)
                if inst.keypoints[k, 2] == 0:
                    continue
                same_image = [c for c in coco.instances if c.image_id == inst.image_id]
                dist = min(np.abs(c.keypoints[COCO.index(name), :2] - inst.keypoints[k, :2]).max()
                           for c in same_image)
                assert dist < 0.011, (other.name, inst.describe(), name)
                checked += 1
    assert checked > 10


def _aic_file(path, n_kpt=14, with_crowd=False):
    """Two persons in OpenMMLab's converted AIC format: no iscrowd, no area, no num_keypoints."""
    kpts = []
    for j in range(n_kpt):
        kpts += [20.0 + 3 * j, 30.0 + 4 * j, 2 if j % 5 else 1]
    anns = [{"id": 11, "image_id": 5, "category_id": 1, "bbox": [10.0, 20.0, 60.0, 80.0], "keypoints": kpts},
            {"id": 12, "image_id": 5, "category_id": 1, "bbox": [70.0, 10.0, 40.0, 70.0],
             "keypoints": [0.0] * (3 * n_kpt)}]
    if with_crowd:
        anns[0]["iscrowd"] = 1
    path.write_text(json.dumps({
        "images": [{"id": 5, "file_name": "0000252aea98840a550dac9a78c476ecb9f47ffa.jpg", "width": 128,
                    "height": 96}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(AIC.keypoint_names)}]}))
    return path


def test_hand_written_aic_file_gets_mmpose_defaults(tmp_path):
    cv2.imwrite(str(tmp_path / "0000252aea98840a550dac9a78c476ecb9f47ffa.jpg"), np.zeros((96, 128, 3), np.uint8))
    ds = build_topdown_dataset("aic", _aic_file(tmp_path / "aic_train.json"), tmp_path, input_size=IN,
                               heatmap_size=HM)
    # iscrowd defaults to 0, num_keypoints is counted: the unlabelled second person is filtered.
    assert [inst.ann_id for inst in ds.instances] == [11]
    ann = ds.coco.anns[11]
    assert ann["iscrowd"] == 0 and ann["num_keypoints"] == 14 and ann["area"] == 60.0 * 80.0
    assert ds.coco.anns[12]["num_keypoints"] == 0
    assert ds[0]["target"].shape == (14, *HM)
    crowd = build_topdown_dataset("aic", _aic_file(tmp_path / "c.json", with_crowd=True), tmp_path,
                                  input_size=IN, heatmap_size=HM)
    assert len(crowd) == 0     # a present iscrowd is respected


def test_hand_written_crowdpose_file(tmp_path):
    kpts = [30.0, 40.0, 2] * 14
    (tmp_path / "100000.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((96, 128, 3), np.uint8))[1].tobytes())
    path = tmp_path / "mmpose_crowdpose_test.json"
    path.write_text(json.dumps({
        "images": [{"id": 100000, "file_name": "100000.jpg", "width": 128, "height": 96, "crowdIndex": 0.31}],
        "annotations": [{"id": 1, "image_id": 100000, "category_id": 1, "iscrowd": 0, "num_keypoints": 14,
                         "bbox": [20, 30, 40, 50], "keypoints": kpts},
                        {"id": 2, "image_id": 100000, "category_id": 1, "iscrowd": 0, "num_keypoints": 14,
                         "bbox": [60, 10, 40, 50], "keypoints": kpts}],
        "categories": [{"id": 1, "name": "person"}]}))
    ds = build_topdown_dataset("crowdpose", path, tmp_path, input_size=IN, heatmap_size=HM, train=False)
    assert isinstance(ds, TopDownCocoDataset) and [i.ann_id for i in ds.instances] == [1, 2]
    assert ds[1]["target"].shape == (14, *HM)


def _mpii_file(path, entries):
    path.write_text(json.dumps(entries))
    return path


def _mpii_entry(image="015601864.jpg", n=16, joints=True):
    e = {"image": image, "center": [60.0, 40.0], "scale": 0.3}
    if joints:
        e["joints"] = [[20.0 + 4 * j, 10.0 + 3 * j] for j in range(n)]
        e["joints_vis"] = [1] * (n - 1) + [0]
    return e


def test_hand_written_mpii_file_and_the_center_scale_box(tmp_path):
    cv2.imwrite(str(tmp_path / "015601864.jpg"), np.zeros((96, 128, 3), np.uint8))
    ann = _mpii_file(tmp_path / "mpii_train.json", [_mpii_entry(), _mpii_entry()])
    ds = build_topdown_dataset("mpii", ann, tmp_path, input_size=IN, heatmap_size=HM, train=True)
    assert isinstance(ds, TopDownMpiiDataset) and len(ds) == 2
    inst = ds.instances[0]
    assert inst.image_id == 15601864 and inst.width is None
    # 1-based joints → 0-based; joints_vis → visibility.
    np.testing.assert_allclose(inst.keypoints[0], [19.0, 9.0, 1.0])
    assert inst.keypoints[15, 2] == 0
    # mmpose: center.y += 15·scale, center −= 1, box side 200·scale.
    cx, cy, side = 60.0 - 1, 40.0 + 15 * 0.3 - 1, 200 * 0.3
    assert inst.bbox == pytest.approx((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    s = ds[0]
    assert set(s) == SAMPLE_KEYS and s["target"].shape == (16, *HM)
    # The pipeline pads by 1.25 (mmpose's scale × 1.25) and widens to the input aspect.
    plain = build_topdown_dataset("mpii", ann, tmp_path, input_size=IN, heatmap_size=HM, train=False)[0]
    assert plain["center"].tolist() == pytest.approx([cx, cy])
    assert plain["scale"].tolist() == pytest.approx([1.25 * side, 1.25 * side * IN[0] / IN[1]])
    # A person without a position (center -1) is neither shifted nor padded.
    assert mpii_box([-1, 40], 1.0) == pytest.approx((-2 - 80, 39 - 80, -2 + 80, 39 + 80))
    # The test split has no joints: fine for evaluation, not for training.
    test_ann = _mpii_file(tmp_path / "mpii_test.json", [_mpii_entry(joints=False)])
    assert build_topdown_dataset("mpii", test_ann, tmp_path, input_size=IN, heatmap_size=HM,
                                 train=False).instances[0].keypoints.sum() == 0
    with pytest.raises(DataError, match=r"mpii_test.json: annotation #0 \(image 015601864.jpg\) lacks key"):
        build_topdown_dataset("mpii", test_ann, tmp_path, train=True)


def test_keypoint_count_that_does_not_match_the_dataset(tmp_path):
    with pytest.raises(DataError, match=r"aic\.json: annotation id 11 .*length 51; expected 3×K = 42 .*aic"):
        build_topdown_dataset("aic", _aic_file(tmp_path / "aic.json", n_kpt=17), tmp_path)
    with pytest.raises(DataError, match=r"crowd\.json: annotation id 11 .*expected 3×K = 42 .*crowdpose"):
        build_topdown_dataset("crowdpose", _aic_file(tmp_path / "crowd.json", n_kpt=17), tmp_path)
    with pytest.raises(DataError, match=r"mpii_train\.json: annotation #1 \(image a.jpg\) has joints of length 14; "
                                        r"expected 16"):
        build_topdown_dataset("mpii", _mpii_file(tmp_path / "mpii_train.json",
                                                 [_mpii_entry("a.jpg"), _mpii_entry("a.jpg", n=14)]), tmp_path)


def test_missing_required_keys_name_file_and_annotation(tmp_path):
    path = _aic_file(tmp_path / "aic.json")
    data = json.loads(path.read_text())
    del data["annotations"][1]["id"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"aic\.json: annotations\[1\] must have id"):
        build_topdown_dataset("aic", path, tmp_path)
    bad = [_mpii_entry(), {k: v for k, v in _mpii_entry().items() if k != "scale"}]
    with pytest.raises(DataError, match=r"m\.json: annotation #1 \(image 015601864.jpg\) lacks key\(s\) scale"):
        build_topdown_dataset("mpii", _mpii_file(tmp_path / "m.json", bad), tmp_path)
    with pytest.raises(DataError, match=r"m2\.json: annotation #0 .*scale -1"):
        build_topdown_dataset("mpii", _mpii_file(tmp_path / "m2.json", [dict(_mpii_entry(), scale=-1)]), tmp_path)
    (tmp_path / "coco_style.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DataError, match=r"coco_style\.json: expected the OpenMMLab MPII layout, a JSON list"):
        build_topdown_dataset("mpii", tmp_path / "coco_style.json", tmp_path)


def test_unknown_dataset_name_and_mpii_detections(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown dataset 'ochuman'; expected one of aic, coco, crowdpose, mpii"):
        build_topdown_dataset("ochuman", tmp_path / "a.json", tmp_path)
    ann = _mpii_file(tmp_path / "mpii_val.json", [_mpii_entry()])
    with pytest.raises(ConfigError, match="detections are not supported for mpii"):
        build_topdown_dataset("mpii", ann, tmp_path, train=False, det_file=tmp_path / "det.json")


def test_multi_dataset_pads_targets_and_routes_by_dataset_index(roots):
    parts = [_build(roots, n) for n in ("coco", "aic", "mpii")]
    multi = MultiTopDownDataset(parts)
    assert multi.names == ["coco", "aic", "mpii"] and multi.num_keypoints == [17, 14, 16]
    assert len(multi) == sum(len(p) for p in parts)
    # The first dataset's samples are exactly those it gives alone.
    alone, inside = parts[0][(2, 1, 7)], multi[(2, 1, 7)]
    assert all(torch.equal(alone[k], inside[k]) for k in alone) and int(inside["dataset_index"]) == 0
    d, local = multi.locate(len(parts[0]) + 1)
    assert (d, local) == (1, 1)
    s = multi[len(parts[0]) + 1]
    assert int(s["dataset_index"]) == 1 and s["target"].shape == (17, *HM)
    assert float(s["target"][14:].abs().sum()) == 0 and float(s["target_weight"][14:].sum()) == 0
    loader = build_dataloader(multi, batch_size=len(multi), shuffle=True, num_workers=0, seed=0, drop_last=False)
    batch = next(iter(loader))
    assert batch["target"].shape == (len(multi), 17, *HM)
    assert sorted(batch["dataset_index"].tolist()) == sorted(
        sum(([i] * len(p) for i, p in enumerate(parts)), []))
    other = _build(roots, "aic")
    other.input_size = (32, 24)
    with pytest.raises(ConfigError, match=r"dataset #1 \(aic, .*aic_train.json\) has input_size"):
        MultiTopDownDataset([parts[0], other])
