"""TopDownCocoDataset: sample contents, targets where the keypoints are, box filters, detections,
flip re-indexing and every bad-input case (DataError naming the file and the item)."""
import json

import cv2
import numpy as np
import pytest
import torch

from vitpose.data.affine import transform_points, udp_warp_matrix, warp_image
from vitpose.data.dataset import SampleKey, TopDownCocoDataset
from vitpose.data.keypoints import COCO
from vitpose.data.synthetic import DET_FILE, generate_synthetic_coco
from vitpose.data.transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig
from vitpose.utils.errors import ConfigError, DataError

IN, HM = (128, 96), (32, 24)
FACTOR = np.array([(IN[1] - 1) / (HM[1] - 1), (IN[0] - 1) / (HM[0] - 1)])   # crop px per heatmap px


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    generate_synthetic_coco(root, seed=1, num_train=12, num_val=8, progress=False)
    return root


def _train(root, **kw):
    kw.setdefault("train", True)
    return TopDownCocoDataset(root / "annotations/person_keypoints_train2017.json", root / "train2017",
                              COCO, IN, HM, **kw)


def _crop_rgb(sample) -> np.ndarray:
    """Un-normalise ``img`` back to an RGB (H, W, 3) float image in [0, 255]."""
    return (sample["img"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255.0


def _expected_crop_keypoints(ds, index, sample):
    """Ground truth keypoints (K, 2) and visibility moved into the crop with the sample's own
    center / scale / rotation / flip, computed independently of the dataset's code path."""
    inst = ds.instances[index]
    kpts, vis = inst.keypoints[:, :2].astype(np.float64), inst.keypoints[:, 2] > 0
    if bool(sample["flipped"]):
        kpts = kpts.copy()
        kpts[:, 0] = inst.width - 1 - kpts[:, 0]
        kpts, vis = kpts[list(COCO.flip_indices)], vis[list(COCO.flip_indices)]
    m = udp_warp_matrix(sample["center"].numpy(), sample["scale"].numpy(), float(sample["rotation"]), IN)
    return transform_points(kpts, m), vis


def test_sample_shapes_and_types(root):
    ds = _train(root)
    s = ds[0]
    spec = {"img": ((3, *IN), torch.float32), "target": ((17, *HM), torch.float32),
            "target_weight": ((17,), torch.float32), "center": ((2,), torch.float32),
            "scale": ((2,), torch.float32), "rotation": ((), torch.float32),
            "image_id": ((), torch.int64), "bbox_score": ((), torch.float32), "flipped": ((), torch.bool)}
    assert set(s) == set(spec)
    for key, (shape, dtype) in spec.items():
        assert tuple(s[key].shape) == shape and s[key].dtype == dtype, key
    assert ds.coco.getImgIds() and ds.ann_file.endswith("person_keypoints_train2017.json") and ds.meta is COCO
    # scale is the padded box widened to the input aspect (W / H = 0.75)
    assert float(s["scale"][0] / s["scale"][1]) == pytest.approx(IN[1] / IN[0], rel=1e-5)


def test_eval_gt_box_sample_is_the_udp_crop(root):
    """Without augmentation the image is exactly the UDP warp of the RGB image around the ×1.25
    padded, aspect-fixed box, normalised with the ImageNet statistics."""
    ds = _train(root, train=False)
    inst = ds.instances[3]
    s = ds[3]
    x1, y1, x2, y2 = inst.bbox
    w, h = (x2 - x1) * 1.25, (y2 - y1) * 1.25
    w, h = (w, w / 0.75) if w > h * 0.75 else (h * 0.75, h)
    np.testing.assert_allclose(s["center"].numpy(), [(x1 + x2) / 2, (y1 + y2) / 2], rtol=1e-6)
    np.testing.assert_allclose(s["scale"].numpy(), [w, h], rtol=1e-5)
    assert float(s["rotation"]) == 0.0 and not bool(s["flipped"]) and float(s["bbox_score"]) == 1.0
    assert int(s["image_id"]) == inst.image_id
    rgb = cv2.imread(str(root / "train2017" / inst.file_name))[..., ::-1]
    crop = warp_image(np.ascontiguousarray(rgb), udp_warp_matrix(s["center"].numpy(), s["scale"].numpy(),
                                                                 0.0, IN), IN)
    np.testing.assert_allclose(_crop_rgb(s), crop, atol=1e-3)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "augmented"])
def test_target_peak_is_at_the_warped_keypoint(root, train):
    """Each labelled joint's heatmap peaks at the keypoint moved into the crop (argmax = nearest
    heatmap pixel of p_crop / f), with augmentation on as well (using the returned metadata)."""
    ds = _train(root, train=train)
    checked = 0
    for i in range(len(ds)):
        s = ds[SampleKey(i, epoch=2, seed=5)]
        expected, vis = _expected_crop_keypoints(ds, i, s)
        mu = expected / FACTOR
        target, weight = s["target"].numpy(), s["target_weight"].numpy()
        for k in range(17):
            inside = np.all((mu[k] >= 0) & (mu[k] <= np.array(HM[::-1]) - 1))
            if vis[k] and inside:
                assert weight[k] == 1.0
                y, x = np.unravel_index(target[k].argmax(), HM)
                assert abs(x - mu[k, 0]) <= 0.5 + 1e-4 and abs(y - mu[k, 1]) <= 0.5 + 1e-4
                assert target[k].max() > 0.88            # σ=2: ≥ exp(-0.5/8) at ≤ 0.71 px
                checked += 1
            elif not vis[k]:
                assert weight[k] == 0.0 and target[k].max() == 0.0
    assert checked > 100


def test_visible_keypoints_land_on_their_markers_in_the_crop(root):
    """End to end with the generator: the crop shows a marker of the joint's colour at the warped
    keypoint, for most visible joints (small face markers may blur at 128×96)."""
    from vitpose.data.synthetic import JOINT_TYPE_COLOURS, joint_type
    ds = _train(root)
    errors = []
    for i in range(len(ds)):
        s = ds[SampleKey(i, 0, 0)]
        expected, _ = _expected_crop_keypoints(ds, i, s)
        v = ds.instances[i].keypoints[:, 2]
        v = v[list(COCO.flip_indices)] if bool(s["flipped"]) else v
        crop = _crop_rgb(s)
        for k in range(17):
            x, y = np.round(expected[k]).astype(int)
            if v[k] == 2 and 0 <= x < IN[1] and 0 <= y < IN[0]:
                colour = JOINT_TYPE_COLOURS[joint_type(COCO.keypoint_names[k])]
                errors.append(np.abs(crop[y, x] - colour).max())
    assert len(errors) > 100 and np.median(errors) < 25 and np.mean(np.array(errors) < 60) > 0.8


def _mini(tmp_path, anns, images=None, size=(60, 80), write_images=True):
    """A hand-made annotation file; returns (ann_file, img_dir)."""
    h, w = size
    images = images or [{"id": 7, "file_name": "a.jpg", "width": w, "height": h}]
    img_dir = tmp_path / "img"
    img_dir.mkdir(exist_ok=True)
    if write_images:
        for img in images:
            cv2.imwrite(str(img_dir / img["file_name"]), np.full((h, w, 3), 128, np.uint8))
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns,
                                    "categories": [{"id": 1, "name": "person"}]}))
    return ann_file, img_dir


def _ann(ann_id, bbox, image_id=7, iscrowd=0, labelled=True):
    k = np.zeros((17, 3))
    if labelled:
        k[:, 0], k[:, 1], k[:, 2] = bbox[0] + 3, bbox[1] + 3, 2
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": bbox,
            "area": bbox[2] * bbox[3], "num_keypoints": int((k[:, 2] > 0).sum()),
            "keypoints": k.reshape(-1).tolist()}


def test_gt_filters_drop_crowd_unlabelled_and_empty_boxes(tmp_path):
    anns = [
        _ann(1, [10, 10, 20, 30]),                      # kept
        _ann(2, [10, 10, 20, 30], iscrowd=1),           # crowd
        _ann(3, [10, 10, 20, 30], labelled=False),      # num_keypoints 0
        _ann(4, [90, 10, 20, 30]),                      # starts right of the image: width 0 after clip
        _ann(5, [-30, 5, 20, 20]),                      # ends left of the image
        _ann(6, [70, 50, 40, 40]),                      # partly outside: clipped, kept
    ]
    ds = TopDownCocoDataset(*_mini(tmp_path, anns), COCO, IN, HM, train=True)
    assert [inst.ann_id for inst in ds.instances] == [1, 6]
    assert ds.instances[1].bbox == (70.0, 50.0, 79.0, 59.0)           # clipped to (W-1, H-1)


def test_synthetic_filters_match_annotations(root):
    ds = _train(root)
    data = json.loads((root / "annotations/person_keypoints_train2017.json").read_text())
    kept = {a["id"] for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0}
    assert {inst.ann_id for inst in ds.instances} == kept
    assert any(a["iscrowd"] for a in data["annotations"]) or any(
        a["num_keypoints"] == 0 for a in data["annotations"])


def test_detection_boxes_for_evaluation(tmp_path):
    ann_file, img_dir = _mini(tmp_path, [_ann(1, [10, 10, 20, 30])])
    det = tmp_path / "det.json"
    det.write_text(json.dumps([
        {"image_id": 7, "category_id": 1, "bbox": [5, 5, 30, 40], "score": 0.9},
        {"image_id": 7, "category_id": 1, "bbox": [1, 2, 10, 10], "score": 0.05},
        {"image_id": 7, "category_id": 2, "bbox": [1, 2, 10, 10], "score": 0.99},
    ]))
    ds = TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, det_file=det)
    assert len(ds) == 2 and not ds.use_gt_boxes
    s = ds[0]
    assert float(s["bbox_score"]) == pytest.approx(0.9)
    np.testing.assert_allclose(s["center"].numpy(), [20, 25])          # xywh → xyxy, not clipped
    assert float(s["target_weight"].sum()) == 0.0                      # no keypoints for detections
    assert len(TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, det_file=det,
                                  det_score_thr=0.1)) == 1
    gt = TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, det_file=det, use_gt_boxes=True)
    assert len(gt) == 1 and float(gt[0]["target_weight"].sum()) == 17
    with pytest.raises(ConfigError):
        TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=True, det_file=det)
    with pytest.raises(ConfigError):
        TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, use_gt_boxes=False)


def test_synthetic_detection_file_loads(root):
    ds = TopDownCocoDataset(root / "annotations/person_keypoints_val2017.json", root / "val2017", COCO,
                            IN, HM, train=False, det_file=root / "person_detection_results" / DET_FILE)
    dets = json.loads((root / "person_detection_results" / DET_FILE).read_text())
    assert len(ds) == len(dets)
    assert sorted(float(ds[i]["bbox_score"]) for i in range(len(ds))) == pytest.approx(
        sorted(d["score"] for d in dets))


def test_flip_reindexes_joints_and_mirrors_the_crop(root):
    """A flipped sample is the exact mirror of the unflipped one with left/right joints swapped
    (UDP: column u of the crop becomes W_in − 1 − u)."""
    plain = _train(root, aug=AugmentConfig.off())
    flipped = _train(root, aug=AugmentConfig.off(flip_prob=1.0))
    for i in (0, 5):
        a, b = plain[i], flipped[i]
        assert not bool(a["flipped"]) and bool(b["flipped"])
        idx = list(COCO.flip_indices)
        np.testing.assert_allclose(b["target"].numpy(), a["target"].numpy()[idx][:, :, ::-1], atol=1e-5)
        np.testing.assert_array_equal(b["target_weight"].numpy(), a["target_weight"].numpy()[idx])
        # OpenCV interpolates in 1/32-px fixed point: a mirrored position may round one grey level off
        np.testing.assert_allclose(b["img"].numpy(), a["img"].numpy()[:, :, ::-1], atol=1.5 / 255 / 0.224)
        assert float(b["center"][0]) == pytest.approx(320 - 1 - float(a["center"][0]))
        # the person still faces the camera after the flip: left shoulder on the crop's right
        hm_x = b["target"].numpy().reshape(17, -1).argmax(1) % HM[1]
        w = b["target_weight"].numpy()
        if w[5] and w[6]:
            assert hm_x[5] > hm_x[6]


def test_same_key_same_sample_and_epochs_differ(root):
    ds = _train(root)
    a, b = ds[SampleKey(4, 1, 0)], ds[SampleKey(4, 1, 0)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    others = [ds[SampleKey(4, e, 0)] for e in range(2, 6)]
    assert any(not torch.equal(a["img"], o["img"]) for o in others)


# ---- bad input: DataError naming the file and the item --------------------------------------

def test_missing_and_malformed_annotation_file(tmp_path):
    with pytest.raises(DataError, match="nothere.json.*not found"):
        TopDownCocoDataset(tmp_path / "nothere.json", tmp_path, COCO, IN, HM)
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "annotations": [')
    with pytest.raises(DataError, match=r"bad\.json.*not valid JSON"):
        TopDownCocoDataset(bad, tmp_path, COCO, IN, HM)
    bad.write_text('{"images": []}')
    with pytest.raises(DataError, match=r"bad\.json.*'annotations'"):
        TopDownCocoDataset(bad, tmp_path, COCO, IN, HM)


def test_keypoints_of_wrong_length(tmp_path):
    ann = _ann(42, [10, 10, 20, 30])
    ann["keypoints"] = ann["keypoints"][:-3]
    ann_file, img_dir = _mini(tmp_path, [_ann(1, [10, 10, 20, 30]), ann])
    with pytest.raises(DataError) as e:
        TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM)
    msg = str(e.value)
    assert "ann.json" in msg and "annotation id 42" in msg and "48" in msg and "51" in msg


def test_annotation_for_unknown_image(tmp_path):
    ann_file, img_dir = _mini(tmp_path, [_ann(9, [10, 10, 20, 30], image_id=123)])
    with pytest.raises(DataError, match=r"ann\.json.*annotation id 9.*image id 123"):
        TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM)


@pytest.mark.parametrize("content, match", [
    ([], "empty"),
    ({"image_id": 7}, "expected a list"),
    ([{"image_id": 999, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5}], "#0.*image id 999"),
    ([{"image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.5},
      {"image_id": 7, "category_id": 1, "bbox": [1, 1], "score": 0.5}], "#1.*bbox"),
    ([{"image_id": 7, "category_id": 1, "bbox": [1, 1, 0, 5], "score": 0.5}], "#0.*positive"),
    ([{"image_id": 7, "bbox": [1, 1, 5, 5]}], "#0.*score"),
])
def test_bad_detection_files(tmp_path, content, match):
    ann_file, img_dir = _mini(tmp_path, [_ann(1, [10, 10, 20, 30])])
    det = tmp_path / "dets.json"
    det.write_text(json.dumps(content))
    with pytest.raises(DataError, match=match) as e:
        TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, det_file=det)
    assert "dets.json" in str(e.value)


def test_missing_detection_file(tmp_path):
    ann_file, img_dir = _mini(tmp_path, [_ann(1, [10, 10, 20, 30])])
    with pytest.raises(DataError, match="nodets.json.*not found"):
        TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, det_file=tmp_path / "nodets.json")


def test_missing_image(tmp_path):
    ann_file, img_dir = _mini(tmp_path, [_ann(5, [10, 10, 20, 30])], write_images=False)
    ds = TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM)
    with pytest.raises(DataError) as e:
        ds[0]
    msg = str(e.value)
    assert "a.jpg" in msg and "not found" in msg and "annotation id 5" in msg and "image id 7" in msg


def test_corrupt_image(tmp_path):
    ann_file, img_dir = _mini(tmp_path, [_ann(5, [10, 10, 20, 30])])
    (img_dir / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    ds = TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM)
    with pytest.raises(DataError, match=r"a\.jpg.*corrupt.*annotation id 5, image id 7"):
        ds[0]


def test_corrupt_image_for_a_detection(tmp_path):
    ann_file, img_dir = _mini(tmp_path, [_ann(5, [10, 10, 20, 30])])
    (img_dir / "a.jpg").write_bytes(b"")
    det = tmp_path / "det.json"
    det.write_text(json.dumps([{"image_id": 7, "category_id": 1, "bbox": [1, 1, 9, 9], "score": 0.5}]))
    ds = TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM, train=False, det_file=det)
    with pytest.raises(DataError, match=r"a\.jpg.*detection #0, image id 7"):
        ds[0]


def test_image_size_mismatch(tmp_path):
    images = [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 60}]
    ann_file, img_dir = _mini(tmp_path, [_ann(5, [10, 10, 20, 30])], images=images)
    ds = TopDownCocoDataset(ann_file, img_dir, COCO, IN, HM)
    with pytest.raises(DataError, match=r"a\.jpg.*80×60.*100×60"):
        ds[0]
