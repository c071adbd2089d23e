"""Drawing poses: the skeleton from the keypoint metadata, keypoint scores, the threshold."""
from __future__ import annotations

import numpy as np

from vitpose.data.keypoints import COCO
from vitpose.visualize import LEFT, draw_label, draw_poses, poses_from_results


def pose(score: float) -> np.ndarray:
    """(1, 17, 3): keypoints on a vertical line, left ankle (15) and knee (13) 40 px apart."""
    p = np.zeros((1, 17, 3), np.float32)
    p[0, :, 0], p[0, :, 1], p[0, :, 2] = 100, np.linspace(20, 180, 17), score
    p[0, 15, :2], p[0, 13, :2] = (60, 150), (60, 110)
    return p


def test_skeleton_and_scores_are_drawn_above_the_threshold_only():
    image = np.full((200, 200, 3), 90, np.uint8)
    drawn = draw_poses(image, pose(0.8), COCO, keypoint_threshold=0.3)
    assert not np.array_equal(drawn, image) and np.array_equal(image, np.full((200, 200, 3), 90, np.uint8))
    # the left ankle - left knee limb (COCO skeleton) in the left side's colour, midway between them
    assert np.abs(drawn[130, 60].astype(int) - LEFT).max() < 20  # (anti-aliased)
    assert np.array_equal(draw_poses(image, pose(0.2), COCO, keypoint_threshold=0.3), image)
    with_scores = draw_poses(image, pose(0.8), COCO, show_scores=True)
    assert not np.array_equal(with_scores, draw_poses(image, pose(0.8), COCO, show_scores=False))


def test_small_images_are_enlarged_and_results_become_arrays():
    image = np.zeros((50, 40, 3), np.uint8)
    assert draw_poses(image, pose(0.9)[:, :, :] * [0.2, 0.2, 1], COCO, min_size=200).shape == (250, 200, 3)
    results = [{"image_id": 1, "keypoints": pose(0.5).ravel().tolist(), "score": 0.7},
               {"image_id": 2, "keypoints": pose(0.5).ravel().tolist(), "score": 0.6}]
    poses, scores = poses_from_results(results, 1, 17)
    assert poses.shape == (1, 17, 3) and scores.tolist() == [np.float32(0.7)]
    assert not np.array_equal(draw_label(image, "no person detected"), image)
