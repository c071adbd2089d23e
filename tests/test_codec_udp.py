"""UDP affine + codec: encode/decode round trips, box corners, targets against the formula."""
import math

import cv2
import numpy as np
import pytest

from vitpose.data.affine import invert_affine, transform_points, udp_warp_matrix, warp_image
from vitpose.data.codec import heatmap_to_image, udp_decode, udp_encode

INPUT = (256, 192)     # (H, W)
HEATMAP = (64, 48)


def _crop_to_heatmap(p_in):
    return p_in / np.array([(INPUT[1] - 1) / (HEATMAP[1] - 1), (INPUT[0] - 1) / (HEATMAP[0] - 1)])


def test_encode_decode_recovers_subpixel_keypoints():
    rng = np.random.default_rng(0)
    k = 17
    # Sub-pixel heatmap positions away from the border (the window stays inside the map).
    mu = rng.uniform([8.0, 8.0], [HEATMAP[1] - 9.0, HEATMAP[0] - 9.0], size=(k, 2))
    mu[0] = [20.5, 30.5]                     # a half-pixel case: rounding of the window centre
    keypoints = mu * np.array([(INPUT[1] - 1) / (HEATMAP[1] - 1), (INPUT[0] - 1) / (HEATMAP[0] - 1)])
    heatmaps, weights = udp_encode(keypoints, np.full(k, 2), INPUT, HEATMAP, sigma=2.0)
    assert heatmaps.shape == (k, *HEATMAP) and heatmaps.dtype == np.float32
    np.testing.assert_array_equal(weights, np.ones(k, dtype=np.float32))
    coords, scores = udp_decode(heatmaps[None])
    assert coords.shape == (1, k, 2) and scores.shape == (1, k)
    assert np.abs(coords[0] - mu).max() < 0.05
    # The integer argmax alone is off by up to half a pixel: the refinement does the work.
    assert np.abs(np.round(mu) - mu).max() > 0.3
    assert np.all(scores > 0.9)


def test_image_crop_heatmap_image_round_trip_and_box_corners():
    rng = np.random.default_rng(1)
    center = np.array([321.7, 240.3])
    scale = np.array([180.0, 240.0])         # aspect 0.75 like 192 / 256
    matrix = udp_warp_matrix(center, scale, 0.0, INPUT)

    corners = np.array([center - scale / 2, center + scale / 2,
                        [center[0] + scale[0] / 2, center[1] - scale[1] / 2]])
    np.testing.assert_allclose(
        transform_points(corners, matrix),
        [[0, 0], [INPUT[1] - 1, INPUT[0] - 1], [INPUT[1] - 1, 0]], atol=1e-9)

    k = 17
    p_img = center + rng.uniform(-0.3, 0.3, size=(k, 2)) * scale      # inside the box, off the border
    p_in = transform_points(p_img, matrix)
    heatmaps, weights = udp_encode(p_in, np.ones(k), INPUT, HEATMAP)
    assert np.all(weights == 1)
    coords, _ = udp_decode(heatmaps[None])
    back = heatmap_to_image(coords, center[None], scale[None], HEATMAP)
    assert back.shape == (1, k, 2)
    assert np.abs(back[0] - p_img).max() < 0.1
    # heatmap_to_image is the inverse of image -> crop -> heatmap for rotation 0.
    np.testing.assert_allclose(
        heatmap_to_image(_crop_to_heatmap(p_in)[None], center[None], scale[None], HEATMAP)[0],
        p_img, atol=1e-9)


def test_rotated_warp_matrix_inverts_and_matches_formula():
    center, scale, theta = np.array([100.0, 80.0]), np.array([60.0, 80.0]), 30.0
    matrix = udp_warp_matrix(center, scale, theta, INPUT)
    pts = np.random.default_rng(2).uniform(0, 200, size=(5, 2))
    t = math.radians(theta)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    a = np.array([(INPUT[1] - 1) / scale[0], (INPUT[0] - 1) / scale[1]])
    expected = a * ((pts - center) @ rot.T + scale / 2)                 # REFERENCE §3
    np.testing.assert_allclose(transform_points(pts, matrix), expected, atol=1e-9)
    np.testing.assert_allclose(transform_points(transform_points(pts, matrix), invert_affine(matrix)),
                               pts, atol=1e-9)
    # The centre always lands in the middle of the crop.
    np.testing.assert_allclose(transform_points(center, matrix),
                               [(INPUT[1] - 1) / 2, (INPUT[0] - 1) / 2], atol=1e-9)


def test_warp_image_moves_content_like_transform_points():
    # A smooth blob at (x=220.4, y=150.7): bilinear sampling keeps its centroid.
    ys, xs = np.mgrid[:300, :400]
    blob = np.exp(-((xs - 220.4) ** 2 + (ys - 150.7) ** 2) / (2 * 6.0**2)).astype(np.float32)
    image = np.stack([blob, 2 * blob, 3 * blob], axis=-1)
    center, scale = np.array([200.0, 140.0]), np.array([96.0, 128.0])
    out = (64, 48)
    matrix = udp_warp_matrix(center, scale, 0.0, out)
    crop = warp_image(image, matrix, out)
    assert crop.shape == (64, 48, 3)
    expected = transform_points(np.array([220.4, 150.7]), matrix)
    weight = crop[..., 0].astype(np.float64)
    cy, cx = np.mgrid[:64, :48]
    centroid = np.array([(weight * cx).sum(), (weight * cy).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, expected, atol=0.02)
    # Channels move together; single-channel images keep their channel axis; borders are zero.
    np.testing.assert_allclose(crop[..., 2], 3 * crop[..., 0], atol=1e-5)
    assert warp_image(image[..., :1], matrix, out).shape == (64, 48, 1)
    far = udp_warp_matrix(np.array([-500.0, -500.0]), scale, 0.0, out)
    assert np.all(warp_image(image + 1, far, out) == 0)


def test_encode_matches_reference_formula():
    sigma = 2.0
    keypoints = np.array([[50.3, 70.9], [3.0, 250.0], [100.0, 100.0]])
    heatmaps, weights = udp_encode(keypoints, np.array([1, 1, 0]), INPUT, HEATMAP, sigma)
    f = np.array([(INPUT[1] - 1) / (HEATMAP[1] - 1), (INPUT[0] - 1) / (HEATMAP[0] - 1)])
    for j in range(2):
        mu = keypoints[j] / f
        c = np.trunc(mu + 0.5)
        for v in range(HEATMAP[0]):
            for u in range(HEATMAP[1]):
                inside = abs(u - c[0]) <= 3 * sigma and abs(v - c[1]) <= 3 * sigma
                want = math.exp(-((u - mu[0]) ** 2 + (v - mu[1]) ** 2) / (2 * sigma**2)) if inside else 0
                assert heatmaps[j, v, u] == pytest.approx(want, abs=1e-6)
    assert np.all(heatmaps[2] == 0) and weights[2] == 0                 # invisible: no target
    np.testing.assert_array_equal(weights[:2], [1, 1])


def test_encode_zero_weight_when_window_fully_outside():
    f = np.array([(INPUT[1] - 1) / (HEATMAP[1] - 1), (INPUT[0] - 1) / (HEATMAP[0] - 1)])
    mu = np.array([
        [-7.6, 10.0],     # centre int(-7.1) = -7, window [-13, -1]: fully left
        [-7.0, 10.0],     # centre int(-6.5) = -6 (released truncation): window reaches column 0
        [10.0, 63 + 7.0],  # fully below
        [47 + 6.0, 10.0],  # window reaches the last column
    ])
    heatmaps, weights = udp_encode(mu * f, np.ones(4), INPUT, HEATMAP)
    np.testing.assert_array_equal(weights, [0, 1, 0, 1])
    assert heatmaps[0].max() == 0 and heatmaps[2].max() == 0
    assert heatmaps[1, :, 0].max() > 0 and heatmaps[3, :, -1].max() > 0


def test_decode_marks_nonpositive_maps_and_keeps_scores():
    heatmaps = np.zeros((2, 2, 16, 12), dtype=np.float32)
    heatmaps[0, 0, 5, 7] = 0.8
    heatmaps[1, 1] = -0.5
    coords, scores = udp_decode(heatmaps)
    np.testing.assert_array_equal(coords[0, 1], [-1, -1])
    np.testing.assert_array_equal(coords[1], [[-1, -1], [-1, -1]])
    np.testing.assert_allclose(scores, [[0.8, 0.0], [0.0, -0.5]])
    np.testing.assert_allclose(coords[0, 0], [7, 5], atol=1e-4)        # a symmetric peak stays put


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="blur_kernel"):
        udp_decode(np.zeros((1, 1, 8, 8)), blur_kernel=4)
    with pytest.raises(ValueError, match="heatmaps"):
        udp_decode(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="scale"):
        udp_warp_matrix(np.zeros(2), np.array([0.0, 10.0]), 0.0, INPUT)
    with pytest.raises(ValueError, match="keypoints"):
        udp_encode(np.zeros((3, 2)), np.ones(2), INPUT, HEATMAP)


def _reference_decode(heatmaps):
    """DARK-UDP written from REFERENCE §4 one map at a time (cv2 blur on a zero-padded map)."""
    n, k, h, w = heatmaps.shape
    coords, scores = np.zeros((n, k, 2)), np.zeros((n, k))
    for i in range(n):
        for j in range(k):
            hm = heatmaps[i, j].astype(np.float64)
            y, x = np.unravel_index(np.argmax(hm), hm.shape)
            scores[i, j] = hm[y, x]
            if hm[y, x] <= 0:
                coords[i, j] = -1
                continue
            padded = np.zeros((h + 10, w + 10))
            padded[5:-5, 5:-5] = hm
            blurred = cv2.GaussianBlur(padded, (11, 11), 0)[5:-5, 5:-5]
            blurred *= hm.max() / blurred.max()
            log = np.pad(np.log(np.clip(blurred, 1e-3, 50)), 1, mode="edge")
            L = lambda dx, dy: log[y + 1 + dy, x + 1 + dx]     # noqa: E731
            grad = np.array([(L(1, 0) - L(-1, 0)) / 2, (L(0, 1) - L(0, -1)) / 2])
            dxx = L(1, 0) - 2 * L(0, 0) + L(-1, 0)
            dyy = L(0, 1) - 2 * L(0, 0) + L(0, -1)
            dxy = (L(1, 1) - L(1, 0) - L(0, 1) + 2 * L(0, 0) - L(-1, 0) - L(0, -1) + L(-1, -1)) / 2
            hess = np.array([[dxx, dxy], [dxy, dyy]]) + np.finfo(np.float32).eps * np.eye(2)
            coords[i, j] = np.array([x, y]) - np.linalg.inv(hess) @ grad
    return coords, scores


def test_decode_matches_per_map_reference():
    rng = np.random.default_rng(5)
    k = 5
    mu = rng.uniform([0.0, 0.0], [HEATMAP[1] - 1.0, HEATMAP[0] - 1.0], size=(3, k, 2))
    mu[0, 0] = [0.2, 10.0]                                      # a peak on the border
    scale = np.array([(INPUT[1] - 1) / (HEATMAP[1] - 1), (INPUT[0] - 1) / (HEATMAP[0] - 1)])
    heatmaps = np.stack([udp_encode(m * scale, np.ones(k), INPUT, HEATMAP)[0] for m in mu])
    heatmaps = heatmaps + rng.normal(0, 0.02, heatmaps.shape).astype(np.float32)
    heatmaps[1, 2] = -np.abs(heatmaps[1, 2])                   # a map without a positive maximum
    coords, scores = udp_decode(heatmaps)
    want_coords, want_scores = _reference_decode(heatmaps)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    np.testing.assert_allclose(coords, want_coords, atol=1e-4)
