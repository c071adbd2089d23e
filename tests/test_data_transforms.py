"""Augmentation pieces against REFERENCE §3: box → center/scale, flip, half body, box jitter."""
import numpy as np
import pytest

from vitpose.data.keypoints import COCO
from vitpose.data.transforms import (
    AugmentConfig,
    augment,
    bbox_xyxy_to_center_scale,
    fix_aspect_ratio,
    flip_horizontal,
    half_body_box,
    normalize_image,
    random_box_jitter,
    sample_rng,
    truncated_normal,
)


def test_defaults_are_the_released_ones():
    c = AugmentConfig()
    assert (c.flip_prob, c.half_body_prob, c.half_body_min_total_keypoints, c.half_body_upper_prob,
            c.half_body_min_upper_keypoints, c.half_body_min_lower_keypoints, c.half_body_padding) == (
        0.5, 0.3, 9, 0.7, 2, 3, 1.5)
    assert (c.shift_factor, c.shift_prob, c.scale_factor, c.scale_prob, c.rotate_factor, c.rotate_prob) == (
        0.16, 0.3, 0.5, 1.0, 80.0, 0.6)
    off = AugmentConfig.off(flip_prob=1.0)
    assert off.flip_prob == 1.0 and off.half_body_prob == off.shift_prob == off.scale_prob == 0.0


def test_center_scale_and_aspect():
    center, scale = bbox_xyxy_to_center_scale(np.array([10, 20, 110, 220]))
    np.testing.assert_allclose(center, [60, 120])
    np.testing.assert_allclose(scale, [125, 250])
    np.testing.assert_allclose(fix_aspect_ratio(scale, 0.75), [187.5, 250])      # widen w
    np.testing.assert_allclose(fix_aspect_ratio(np.array([300.0, 100.0]), 0.75), [300, 400])  # widen h


def test_flip_mirrors_and_reindexes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    kpts = rng.uniform(0, 29, (17, 2)).astype(np.float32)
    vis = (rng.random(17) > 0.3).astype(np.float32)
    img_f, k_f, v_f, c_f = flip_horizontal(image, kpts, vis, np.array([10.0, 7.0]), COCO.flip_indices)
    np.testing.assert_array_equal(img_f, image[:, ::-1])
    np.testing.assert_allclose(c_f, [29 - 10.0, 7.0])
    for k in range(17):
        j = COCO.flip_indices[k]
        np.testing.assert_allclose(k_f[k], [29 - kpts[j, 0], kpts[j, 1]])
        assert v_f[k] == vis[j]
    # the pixel under a keypoint is the same before and after
    x, y = 12, 5
    assert np.array_equal(image[y, x], img_f[y, 29 - x])


def _upright_person():
    """COCO keypoints of a standing person: head at the top, ankles at the bottom."""
    y = np.array([10, 8, 8, 9, 9, 30, 30, 50, 50, 70, 70, 80, 80, 110, 110, 140, 140], np.float32)
    x = np.array([50, 53, 47, 56, 44, 65, 35, 70, 30, 72, 28, 60, 40, 62, 38, 63, 37], np.float32)
    return np.stack([x, y], 1), np.ones(17, np.float32)


def test_half_body_upper_and_lower():
    kpts, vis = _upright_person()
    upper = AugmentConfig(half_body_prob=1.0, half_body_upper_prob=1.0)
    c, s = half_body_box(kpts, vis, COCO, upper, np.random.default_rng(0))
    up = kpts[:11]
    np.testing.assert_allclose(c, up.mean(0), rtol=1e-6)
    np.testing.assert_allclose(s, (up.max(0) - up.min(0)) * 1.5, rtol=1e-6)
    lower = AugmentConfig(half_body_prob=1.0, half_body_upper_prob=0.0)
    c, s = half_body_box(kpts, vis, COCO, lower, np.random.default_rng(0))
    np.testing.assert_allclose(c, kpts[11:].mean(0), rtol=1e-6)
    # too few lower joints visible (< 3): the upper body is taken even when lower is preferred
    vis2 = vis.copy()
    vis2[12:] = 0
    c, _ = half_body_box(kpts, vis2, COCO, lower, np.random.default_rng(0))
    np.testing.assert_allclose(c, kpts[:11].mean(0), rtol=1e-6)


def test_half_body_needs_nine_visible_and_probability():
    kpts, vis = _upright_person()
    vis[:9] = 0                                        # 8 visible
    cfg = AugmentConfig(half_body_prob=1.0)
    assert half_body_box(kpts, vis, COCO, cfg, np.random.default_rng(0)) is None
    kpts, vis = _upright_person()
    hits = sum(half_body_box(kpts, vis, COCO, AugmentConfig(), np.random.default_rng(i)) is not None
               for i in range(2000))
    assert 0.26 < hits / 2000 < 0.34                   # p = 0.3


def test_truncated_normal_bounds():
    t = truncated_normal(np.random.default_rng(0), 20000)
    assert t.min() >= -1 and t.max() <= 1 and abs(t.mean()) < 0.02
    assert 0.25 < t.std() < 0.6                        # N(0,1) truncated to ±1 has std ≈ 0.54


def test_box_jitter_ranges_and_probabilities():
    center, scale = np.array([100.0, 100.0], np.float32), np.array([80.0, 160.0], np.float32)
    cs, ss, rs = [], [], []
    for i in range(3000):
        c, s, r = random_box_jitter(center, scale, AugmentConfig(), np.random.default_rng(i))
        cs.append(c), ss.append(s), rs.append(r)
    cs, ss, rs = np.array(cs), np.array(ss), np.array(rs)
    shift = (cs - center) / scale
    assert np.abs(shift).max() <= 0.16 + 1e-6
    assert 0.27 < np.mean(np.any(shift != 0, axis=1)) < 0.33          # shift p 0.3
    ratio = ss / scale
    assert np.allclose(ratio[:, 0], ratio[:, 1]) and ratio.min() >= 0.5 and ratio.max() <= 1.5
    assert np.abs(rs).max() <= 80 and 0.57 < np.mean(rs != 0) < 0.63  # rotation p 0.6
    c, s, r = random_box_jitter(center, scale, AugmentConfig.off(), np.random.default_rng(0))
    assert np.array_equal(c, center) and np.array_equal(s, scale) and r == 0.0


def test_augment_is_a_function_of_the_sample_seed():
    kpts, vis = _upright_person()
    image = np.zeros((150, 100, 3), np.uint8)
    args = (image, kpts, vis, np.array([50.0, 75.0], np.float32), np.array([60.0, 170.0], np.float32),
            COCO, AugmentConfig())
    a = augment(*args, sample_rng(0, 3, 17))
    b = augment(*args, sample_rng(0, 3, 17))
    assert a.flipped == b.flipped and a.rotation == b.rotation and np.array_equal(a.center, b.center)
    outs = {(augment(*args, sample_rng(0, e, 17)).rotation) for e in range(10)}
    assert len(outs) > 2
    flips = [augment(*args, sample_rng(0, 0, i)).flipped for i in range(1000)]
    assert 0.45 < np.mean(flips) < 0.55


def test_normalize_image():
    crop = np.zeros((4, 3, 3), np.uint8)
    crop[..., 0] = 255
    x = normalize_image(crop)
    assert tuple(x.shape) == (3, 4, 3) and str(x.dtype) == "torch.float32"
    assert float(x[0, 0, 0]) == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert float(x[1, 0, 0]) == pytest.approx(-0.456 / 0.224, rel=1e-5)
