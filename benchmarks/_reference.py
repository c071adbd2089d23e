"""Today's implementations, frozen, for the benchmarks to time the new paths against in the same run.

`topdown_results` / `oks_nms` are the per-image dict-and-loop post-processing the library had before
the array version (commit e6ca20c); the decoder's reference stays in the library
(`vitpose.data.codec.udp_decode_reference`, used by the tests too). `plain_sample` is the "plain"
top-down training sample the issue names: cv2 decode + one warpAffine + a numpy Gaussian target.
"""
from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np

from vitpose.evaluation.nms import oks_iou
from vitpose.evaluation.rescoring import rescore


def oks_nms(instances, threshold, sigmas):
    """The released greedy loop: one oks_iou call per kept instance."""
    if len(instances) == 0:
        return []
    keypoints = np.stack([np.asarray(inst["keypoints"], dtype=np.float64) for inst in instances])
    scores = np.array([float(inst["score"]) for inst in instances])
    areas = np.array([float(inst["area"]) for inst in instances])
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        oks = oks_iou(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        order = rest[oks <= threshold]
    return keep


def topdown_results(keypoints_img, scores, scales, box_scores, image_ids, sigmas, nms_threshold=0.9,
                    score_threshold=0.2, category_id=1):
    """Rescoring + per-image OKS-NMS into COCO results, as `vitpose.evaluation.postprocess` had it."""
    keypoints_img = np.asarray(keypoints_img, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    instance_scores = rescore(scores, box_scores, threshold=score_threshold)
    areas = scales[:, 0] * scales[:, 1]
    flat = np.concatenate([keypoints_img, scores[..., None]], axis=-1)
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, image_id in enumerate(image_ids.tolist()):
        by_image[int(image_id)].append(i)
    results = []
    for image_id in sorted(by_image):
        members = by_image[image_id]
        instances = [{"keypoints": flat[i], "score": instance_scores[i], "area": areas[i]} for i in members]
        for j in oks_nms(instances, threshold=nms_threshold, sigmas=sigmas):
            i = members[j]
            results.append({"image_id": image_id, "category_id": category_id,
                            "keypoints": [float(v) for v in flat[i].reshape(-1)],
                            "score": float(instance_scores[i])})
    return results


def plain_sample(dataset, index: int, epoch: int, seed: int) -> dict:
    """A training sample the plain way: cv2 decode of the whole image + RGB conversion, numpy flip,
    scipy's truncated normal, one warpAffine, a whole-map numpy Gaussian target, per-pixel float
    normalisation. Same augmentation draws as `TopDownDataset.sample` (the library before issue 17), so
    the two must agree exactly. Returns img (3, H, W), target (K, h, w), target_weight (K,) as numpy.
    """
    from scipy.stats import truncnorm

    from vitpose.data.affine import transform_points, udp_warp_matrix
    from vitpose.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, bbox_xyxy_to_center_scale,
                                         fix_aspect_ratio, half_body_box, sample_rng)

    inst = dataset.instances[index]
    image = cv2.cvtColor(cv2.imread(str(dataset.img_dir / inst.file_name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    keypoints = inst.keypoints[:, :2].copy()
    visible = np.minimum(inst.keypoints[:, 2], 1.0).astype(np.float32)
    center, scale = bbox_xyxy_to_center_scale(np.array(inst.bbox))
    cfg, meta = dataset.aug, dataset.meta
    rng = sample_rng(seed, epoch, index)
    if rng.random() < cfg.flip_prob:
        last_x = image.shape[1] - 1
        image = np.ascontiguousarray(image[:, ::-1])
        keypoints[:, 0] = last_x - keypoints[:, 0]
        keypoints, visible = keypoints[list(meta.flip_indices)], visible[list(meta.flip_indices)]
        center = np.array([last_x - center[0], center[1]], dtype=np.float32)
    half = half_body_box(keypoints, visible, meta, cfg, rng)
    if half is not None:
        center, scale = half
    t = truncnorm.rvs(-1.0, 1.0, size=4, random_state=rng)
    u = rng.random(3)
    center, scale = center.astype(np.float32).copy(), scale.astype(np.float32).copy()
    if u[0] < cfg.shift_prob:
        center += (cfg.shift_factor * t[0:2] * scale).astype(np.float32)
    if u[1] < cfg.scale_prob:
        scale *= np.float32(1.0 + cfg.scale_factor * t[2])
    rotation = float(cfg.rotate_factor * t[3]) if u[2] < cfg.rotate_prob else 0.0
    scale = fix_aspect_ratio(scale, dataset.input_size[1] / dataset.input_size[0])
    matrix = udp_warp_matrix(center, scale, rotation, dataset.input_size)
    (in_h, in_w), (hm_h, hm_w) = dataset.input_size, dataset.heatmap_size
    crop = cv2.warpAffine(image, matrix, (in_w, in_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Whole-map UDP Gaussian target (REFERENCE §3).
    mu = transform_points(keypoints, matrix) / np.array([(in_w - 1) / (hm_w - 1), (in_h - 1) / (hm_h - 1)])
    sigma = dataset.sigma
    radius, centre = 3.0 * sigma, np.trunc(mu + 0.5)
    outside = np.any(centre + radius < 0, axis=1) | (centre[:, 0] - radius > hm_w - 1) | (
        centre[:, 1] - radius > hm_h - 1)
    valid = (visible >= 0.5) & ~outside & np.all(np.isfinite(mu), axis=1)
    uu = np.arange(hm_w, dtype=np.float64)[None, None, :]
    vv = np.arange(hm_h, dtype=np.float64)[None, :, None]
    window = (np.abs(uu - centre[:, 0, None, None]) <= radius) & (np.abs(vv - centre[:, 1, None, None]) <= radius)
    with np.errstate(invalid="ignore"):
        gauss = np.exp(-((uu - mu[:, 0, None, None]) ** 2 + (vv - mu[:, 1, None, None]) ** 2) / (2.0 * sigma ** 2))
    target = np.where(window & valid[:, None, None], gauss, 0.0).astype(np.float32)
    weight = np.where(valid, np.minimum(visible, 1.0), 0.0).astype(np.float32)
    img = np.ascontiguousarray(((crop.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
    return {"img": img, "target": target, "target_weight": weight}
