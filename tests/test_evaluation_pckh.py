"""MPII PCKh@0.5 on hand-computed cases."""
import numpy as np
import pytest

from vitpose.data.keypoints import MPII
from vitpose.evaluation.pckh import pckh, pckh_per_joint
from vitpose.utils.errors import DataError

K = 16


def _case():
    # Two people; head boxes with diagonals 50 and 100 -> head sizes 30 and 60 px.
    gt = np.zeros((2, K, 2)) + 100.0
    head_boxes = np.array([[0, 0, 30, 40], [0, 0, 60, 80]], dtype=float)
    errors = np.zeros((2, K))
    errors[0, :8] = 14.0        # 14 / 30 = 0.47 -> correct
    errors[0, 8:] = 16.0        # 16 / 30 = 0.53 -> wrong
    errors[1, :] = 29.0         # 29 / 60 = 0.48 -> correct
    errors[1, 10] = 31.0        # 31 / 60 = 0.52 -> wrong
    pred = gt.copy()
    pred[..., 0] += errors * 0.6
    pred[..., 1] += errors * 0.8                    # |(0.6, 0.8)| = 1
    visible = np.ones((2, K))
    visible[1, 11] = 0                              # not annotated: not scored
    return pred, gt, visible, head_boxes


def test_pckh_per_joint_counts():
    hits, counts = pckh_per_joint(*_case())
    want_hits = np.array([2] * 8 + [1] * 8)
    want_hits[10] = 0
    want_hits[11] = 0                               # person 0 wrong, person 1 invisible
    np.testing.assert_array_equal(hits, want_hits)
    np.testing.assert_array_equal(counts, [2] * 11 + [1] + [2] * 4)


def test_pckh_mean_excludes_pelvis_and_thorax():
    pred, gt, visible, head_boxes = _case()
    assert (MPII.index("pelvis"), MPII.index("thorax")) == (6, 7)
    hits, counts = pckh_per_joint(pred, gt, visible, head_boxes)
    keep = [j for j in range(K) if j not in (6, 7)]
    assert pckh(pred, gt, visible, head_boxes) == pytest.approx(hits[keep].sum() / counts[keep].sum())
    assert pckh(pred, gt, visible, head_boxes) == pytest.approx(18 / 27)
    # Moving pelvis and thorax far away changes nothing.
    pred[:, 6:8] += 1000
    assert pckh(pred, gt, visible, head_boxes) == pytest.approx(18 / 27)
    assert pckh(gt, gt, visible, head_boxes) == 1.0


def test_pckh_bad_input():
    pred, gt, visible, head_boxes = _case()
    head_boxes[1] = [5, 5, 5, 5]
    with pytest.raises(DataError, match=r"instance\(s\) \[1\]"):
        pckh(pred, gt, visible, head_boxes)
    with pytest.raises(ValueError, match="shapes"):
        pckh(pred[:, :3], gt, visible, head_boxes)
