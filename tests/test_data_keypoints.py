"""Keypoint metadata: flip indices, sigmas and body halves against REFERENCE §3, §4, §6."""
import numpy as np
import pytest

from vitpose.data.keypoints import AIC, COCO, CROWDPOSE, MPII, KeypointMeta, get_meta
from vitpose.utils.errors import ConfigError

ALL = [COCO, AIC, MPII, CROWDPOSE]


def test_coco_matches_reference():
    assert COCO.num_keypoints == 17
    assert list(COCO.flip_indices) == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    np.testing.assert_allclose(COCO.sigmas, [.026, .025, .025, .035, .035, .079, .079, .072, .072,
                                             .062, .062, .107, .107, .087, .087, .089, .089])
    assert COCO.upper_body_ids == tuple(range(11)) and COCO.lower_body_ids == tuple(range(11, 17))
    assert COCO.keypoint_names[0] == "nose" and COCO.keypoint_names[16] == "right_ankle"
    assert len(COCO.skeleton) == 19


@pytest.mark.parametrize("meta, flip", [
    (AIC, [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8, 12, 13]),
    (MPII, [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]),
    (CROWDPOSE, [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13]),
])
def test_other_datasets_flip_indices_match_reference(meta, flip):
    assert list(meta.flip_indices) == flip


def test_aic_and_crowdpose_sigmas():
    np.testing.assert_allclose(AIC.sigmas[[0, 6, 13]], [0.01388152, 0.03909642, 0.01236173])
    np.testing.assert_allclose(CROWDPOSE.sigmas, [.079, .079, .072, .072, .062, .062, .107, .107,
                                                  .087, .087, .089, .089, .079, .079])


@pytest.mark.parametrize("meta", ALL, ids=lambda m: m.name)
def test_flip_swaps_left_and_right_names(meta):
    for k, j in enumerate(meta.flip_indices):
        a, b = meta.keypoint_names[k], meta.keypoint_names[j]
        if a.startswith("left_"):
            assert b == "right_" + a[5:]
        elif a.startswith("right_"):
            assert b == "left_" + a[6:]
        else:
            assert j == k
    assert sorted(meta.upper_body_ids + meta.lower_body_ids) == list(range(meta.num_keypoints))
    assert all(0 <= i < meta.num_keypoints and 0 <= j < meta.num_keypoints for i, j in meta.skeleton)


def test_sigmas_are_read_only_and_meta_hashable():
    with pytest.raises(ValueError):
        COCO.sigmas[0] = 1.0
    assert {COCO: 1}[get_meta("COCO")] == 1


def test_get_meta_unknown_lists_valid_names():
    assert get_meta("crowdpose") is CROWDPOSE
    with pytest.raises(ConfigError) as e:
        get_meta("h36m")
    assert "h36m" in str(e.value)
    for name in ("aic", "coco", "crowdpose", "mpii"):
        assert name in str(e.value)


def test_inconsistent_meta_rejected():
    with pytest.raises(ValueError, match="involution"):
        KeypointMeta("bad", ("a", "b", "c"), (1, 2, 0), np.ones(3), (0,), (1, 2), ())
