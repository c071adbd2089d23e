"""Rescoring, OKS and OKS-NMS against brute-force references written from the definitions."""
import math

import numpy as np
import pytest

from vitpose.data.keypoints import COCO
from vitpose.evaluation.nms import oks_iou, oks_nms
from vitpose.evaluation.postprocess import topdown_results
from vitpose.evaluation.rescoring import rescore

SIGMAS = np.asarray(COCO.sigmas)


def _oks_reference(a, b, area_a, area_b, sigmas, vis_thr=None):
    """OKS of REFERENCE §4, one keypoint at a time."""
    terms = []
    for k in range(len(sigmas)):
        if vis_thr is not None and not (a[k][2] > vis_thr and b[k][2] > vis_thr):
            continue
        d2 = (a[k][0] - b[k][0]) ** 2 + (a[k][1] - b[k][1]) ** 2
        e = d2 / (2 * sigmas[k]) ** 2 / ((area_a + area_b) / 2 + np.spacing(1)) / 2
        terms.append(math.exp(-e))
    return sum(terms) / len(terms) if terms else 0.0


def _nms_reference(instances, threshold, sigmas, vis_thr=None):
    """Greedy NMS by definition: visit by decreasing score; keep unless OKS > thr with a kept one."""
    order = sorted(range(len(instances)), key=lambda i: (-instances[i]["score"], i))
    keep = []
    for i in order:
        if all(_oks_reference(instances[j]["keypoints"], instances[i]["keypoints"],
                              instances[j]["area"], instances[i]["area"], sigmas, vis_thr) <= threshold
               for j in keep):
            keep.append(i)
    return keep


def _random_instances(rng, n, k=17, clusters=4):
    """Instances scattered around a few poses at several noise levels, so that some overlap."""
    poses = rng.uniform(0, 200, size=(clusters, k, 2))
    instances = []
    for _ in range(n):
        noise = rng.choice([0.5, 2.0, 5.0, 15.0])
        xy = poses[rng.integers(clusters)] + rng.normal(0, noise, size=(k, 2))
        scores = rng.uniform(0, 1, size=(k, 1))
        instances.append({"keypoints": np.concatenate([xy, scores], axis=1),
                          "score": float(rng.uniform()), "area": float(rng.uniform(2000, 20000))})
    return instances


def test_oks_iou_matches_definition():
    rng = np.random.default_rng(0)
    inst = _random_instances(rng, 8)
    others = np.stack([i["keypoints"] for i in inst[1:]])
    areas = np.array([i["area"] for i in inst[1:]])
    for vis_thr in (None, 0.5):
        got = oks_iou(inst[0]["keypoints"], others, inst[0]["area"], areas, SIGMAS, vis_thr)
        want = [_oks_reference(inst[0]["keypoints"], o["keypoints"], inst[0]["area"], o["area"],
                               SIGMAS, vis_thr) for o in inst[1:]]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert oks_iou(inst[0]["keypoints"], inst[0]["keypoints"][None], 100.0, [100.0], SIGMAS)[0] == 1.0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.3, 0.9])
def test_oks_nms_equals_brute_force(seed, threshold):
    rng = np.random.default_rng(seed)
    instances = _random_instances(rng, int(rng.integers(5, 40)))
    instances[3]["score"] = instances[5]["score"]          # a tie: lower index first
    vis_thr = None if seed % 2 else 0.2
    got = oks_nms(instances, threshold=threshold, sigmas=SIGMAS, vis_thr=vis_thr)
    want = _nms_reference(instances, threshold, SIGMAS, vis_thr)
    assert got == want
    assert 0 < len(got) < len(instances)                  # the draw actually suppresses something


def test_oks_nms_defaults_and_errors():
    assert oks_nms([]) == []
    inst = _random_instances(np.random.default_rng(1), 10)
    assert oks_nms(inst) == _nms_reference(inst, 0.9, SIGMAS)       # COCO sigmas, 0.9 by default
    with pytest.raises(ValueError, match="K = 14"):
        oks_nms(inst, sigmas=np.full(14, 0.05))


def test_rescore():
    assert rescore(np.array([0.1, 0.5, 0.9, 0.2]), 0.8) == pytest.approx(0.8 * 0.7)
    assert rescore(np.array([0.1, 0.2, 0.05]), 0.8) == 0.0                  # none above 0.2
    batch = rescore(np.array([[0.3, 0.1], [0.0, 0.0]]), np.array([0.5, 1.0]))
    np.testing.assert_allclose(batch, [0.15, 0.0])
    assert isinstance(rescore(np.array([0.5]), 1.0), float)


def test_topdown_results_rescoring_nms_and_format():
    k = 17
    base = np.random.default_rng(2).uniform(50, 150, size=(k, 2))
    # Image 7: a duplicate of instance 0 (suppressed) and a distant person; image 3: one person.
    keypoints = np.stack([base, base + 0.5, base + 300, base])
    scores = np.full((4, k), 0.9)
    scores[1] = 0.5
    scales = np.array([[100.0, 120.0]] * 4)
    results = topdown_results(keypoints, scores, np.zeros((4, 2)), scales,
                              box_scores=np.array([1.0, 1.0, 0.5, 0.8]),
                              image_ids=np.array([7, 7, 7, 3]), sigmas=SIGMAS)
    assert [r["image_id"] for r in results] == [3, 7, 7]
    assert [r["score"] for r in results] == pytest.approx([0.8 * 0.9, 0.9, 0.5 * 0.9])
    first = results[1]
    assert set(first) == {"image_id", "category_id", "keypoints", "score"}    # no 'bbox'
    assert first["category_id"] == 1 and isinstance(first["image_id"], int)
    np.testing.assert_allclose(np.reshape(first["keypoints"], (k, 3))[:, :2], base)
    np.testing.assert_allclose(np.reshape(first["keypoints"], (k, 3))[:, 2], 0.9)
    # Without NMS every instance survives.
    assert len(topdown_results(keypoints, scores, np.zeros((4, 2)), scales, np.ones(4),
                               np.array([7, 7, 7, 3]), SIGMAS, nms_threshold=None)) == 4
    with pytest.raises(ValueError, match="scales"):
        topdown_results(keypoints, scores, np.zeros((4, 2)), scales[:2], np.ones(4),
                        np.zeros(4), SIGMAS)
