"""The decoded-image cache (params.yaml `scales.<s>.train.image_cache_mb`): same pixels, so the same
samples; shared arrays are read-only; a rewritten file is decoded again; the byte budget holds."""
import cv2
import numpy as np
import pytest
import torch

from vitpose.data import image_io
from vitpose.data.dataset import SampleKey, TopDownCocoDataset
from vitpose.data.image_io import configure_image_cache, read_image_bgr
from vitpose.data.keypoints import COCO
from vitpose.data.synthetic import generate_synthetic_coco
from vitpose.utils.errors import DataError


@pytest.fixture
def cache():
    configure_image_cache(64)
    yield image_io._cache
    configure_image_cache(0)


def _jpeg(path, seed, shape=(40, 50)):
    image = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return path


def test_cached_image_is_the_decoded_one_and_read_only(tmp_path, cache):
    path = _jpeg(tmp_path / "a.jpg", 0)
    first = read_image_bgr(path)
    np.testing.assert_array_equal(first, cv2.imread(str(path), cv2.IMREAD_COLOR))
    assert read_image_bgr(path) is first  # decoded once
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1  # shared by every caller: nobody may change it in place


def test_rewritten_file_is_decoded_again(tmp_path, cache):
    path = _jpeg(tmp_path / "a.jpg", 0)
    old = read_image_bgr(path)
    _jpeg(path, 1, shape=(30, 20))
    new = read_image_bgr(path)
    assert new.shape == (30, 20, 3) and new is not old


def test_errors_still_name_the_file(tmp_path, cache):
    with pytest.raises(DataError, match="missing.jpg: image file not found"):
        read_image_bgr(tmp_path / "missing.jpg")
    (tmp_path / "cut.jpg").write_bytes(_jpeg(tmp_path / "whole.jpg", 0).read_bytes()[:200])
    with pytest.raises(DataError, match="cut.jpg: image file is corrupt: truncated JPEG"):
        read_image_bgr(tmp_path / "cut.jpg")


def test_least_recently_used_images_leave_first_within_the_budget(tmp_path):
    c = image_io.DecodedImageCache(max_bytes=2 * 40 * 50 * 3)
    a, b, d = (np.zeros((40, 50, 3), np.uint8) for _ in range(3))
    c.put(("a",), a)
    c.put(("b",), b)
    assert c.get(("a",)) is a  # a is now the most recent
    c.put(("d",), d)
    assert c.get(("b",)) is None and c.get(("a",)) is a and c.get(("d",)) is d
    assert c.bytes == 2 * a.nbytes
    c.put(("huge",), np.zeros((100, 100, 3), np.uint8))  # larger than the budget: not kept
    assert c.get(("huge",)) is None and c.bytes == 2 * a.nbytes


def test_configure_refuses_a_negative_size_and_zero_turns_it_off():
    with pytest.raises(ValueError, match="expected >= 0 MiB, got -1"):
        configure_image_cache(-1)
    configure_image_cache(0)
    assert image_io._cache is None


def test_training_samples_are_identical_with_the_cache(tmp_path):
    root = tmp_path / "coco"
    generate_synthetic_coco(root, seed=1, num_train=6, num_val=2, progress=False)
    ds = TopDownCocoDataset(root / "annotations/person_keypoints_train2017.json", root / "train2017",
                            COCO, (128, 96), (32, 24), train=True)
    keys = [SampleKey(i, epoch, 0) for epoch in range(2) for i in range(len(ds))]
    plain = [ds[k] for k in keys]
    configure_image_cache(64)
    try:
        cached = [ds[k] for k in keys]
        assert image_io._cache.bytes > 0
    finally:
        configure_image_cache(0)
    for p, c in zip(plain, cached):
        assert p.keys() == c.keys()
        for name in p:
            assert torch.equal(torch.as_tensor(p[name]), torch.as_tensor(c[name])), name
