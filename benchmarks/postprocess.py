"""COCO-scale evaluation post-processing: decode + map back + rescoring + OKS-NMS of 104,125 boxes.

COCO val's detection file has 104,125 person boxes on 5,000 images; each box gives 17 heatmaps of
64 × 48. Synthetic heatmaps of that shape are generated chunk by chunk (untimed; as the model would
hand them over), then decoded by today's reference decoder (`udp_decode_reference`: one OpenCV blur
per map) and by the library's `udp_decode` (batched, neighbourhood-only blur; on the GPU with
`--device cuda`), alternating per chunk, and the results compared. The rescoring + OKS-NMS of all
boxes is timed for today's dict-and-loop version (benchmarks/_reference.py) and the library's
`topdown_results`, on the same decoded inputs.

    python benchmarks/postprocess.py                       # full scale, reference on every box (~4 min on 2 cores)
    python benchmarks/postprocess.py --reference-boxes 20000   # reference on the first 20,000 boxes only
    python benchmarks/postprocess.py --device cuda         # decode on the GPU

Goal (issue 17): the new path ≤ 15 s for 104,125 boxes on a 2-core CPU, coordinates within 1e-4 px.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import _common  # noqa: F401  (puts the repository root on sys.path)
from _common import header, ratio

import torch

from benchmarks import _reference
from vitpose.data.codec import heatmap_to_image, udp_decode, udp_decode_reference
from vitpose.data.keypoints import COCO
from vitpose.evaluation.postprocess import topdown_results

HEATMAP = (64, 48)      # (h, w) of a 256 × 192 input
K = 17
# A standing person in a unit box (x, y), COCO joint order; persons are this pose scaled and jittered.
_POSE = np.array([[.50, .08], [.53, .06], [.47, .06], [.57, .08], [.43, .08], [.64, .22], [.36, .22],
                  [.70, .38], [.30, .38], [.72, .52], [.28, .52], [.60, .55], [.40, .55], [.61, .76],
                  [.39, .76], [.62, .96], [.38, .96]])


def synthetic_detections(rng: np.random.Generator, boxes: int, images: int):
    """Boxes on 640 × 480 images, skewed per-image counts like a detector's, ~60 % on a person.

    Returns image_ids (N,), centers (N, 2), scales (N, 2) (aspect-fixed padded size), box_scores (N,),
    and the joints (N, K, 2) in image px that each box's heatmaps peak at (nan: background box).
    """
    weights = np.exp(rng.normal(0.0, 0.8, size=images))
    counts = rng.multinomial(boxes, weights / weights.sum())
    image_ids = np.repeat(np.arange(images) * 7 + 1, counts)         # arbitrary, increasing ids
    persons = {i: [] for i in range(images)}
    for i in range(images):
        for _ in range(rng.integers(1, 6)):
            size = rng.uniform(40, 400)
            origin = rng.uniform([0, 0], [640 - 0.5 * size, 480 - 0.5 * size])
            persons[i].append(origin + _POSE * np.array([0.5 * size, size]) + rng.normal(0, 2, (K, 2)))
    owner = np.repeat(np.arange(images), counts)
    on_person = rng.random(boxes) < 0.6
    joints = np.full((boxes, K, 2), np.nan)
    centers = np.empty((boxes, 2))
    sizes = np.empty((boxes, 2))
    for b in range(boxes):
        if on_person[b]:
            pose = persons[owner[b]][rng.integers(len(persons[owner[b]]))]
            lo, hi = pose.min(0), pose.max(0)
            centers[b] = (lo + hi) / 2 + rng.normal(0, 0.05, 2) * (hi - lo)
            sizes[b] = (hi - lo) * rng.uniform(0.9, 1.2, 2)
            joints[b] = pose
        else:
            sizes[b] = rng.uniform(20, 300, 2)
            centers[b] = rng.uniform([0, 0], [640, 480])
    scale = sizes * 1.25
    aspect = HEATMAP[1] / HEATMAP[0]
    wide = scale[:, 0] > scale[:, 1] * aspect
    scale = np.where(wide[:, None], np.stack([scale[:, 0], scale[:, 0] / aspect], 1),
                     np.stack([scale[:, 1] * aspect, scale[:, 1]], 1))
    box_scores = np.where(on_person, rng.uniform(0.3, 1.0, boxes), rng.uniform(0.0, 0.3, boxes))
    return image_ids, centers, scale, box_scores, joints


class HeatmapMaker:
    """Heatmaps (B, K, 64, 48) float32 for a chunk of boxes, made on `device`: a σ = 2 Gaussian per
    joint (amplitude 0.3-0.95, a fifth of the joints "occluded" at ×0.3; background boxes 0.0005-0.1
    at random places) plus N(0, 0.004) noise, the look of a trained model's output."""

    def __init__(self, rng: np.random.Generator, device: torch.device) -> None:
        self.rng, self.device = rng, device
        noise = (0.004 * rng.standard_normal((64, K, *HEATMAP))).astype(np.float32)
        self.noise = torch.from_numpy(noise).to(device)

    def __call__(self, centers, scales, joints) -> torch.Tensor:
        rng, (h, w) = self.rng, HEATMAP
        n = len(centers)
        mu = (joints - centers[:, None] + scales[:, None] / 2) * np.array([w - 1, h - 1]) / scales[:, None]
        background = np.isnan(mu[..., 0])
        mu[background] = rng.uniform([-2, -2], [w + 1, h + 1], size=(background.sum(), 2))
        amp = np.where(background, rng.uniform(0.0005, 0.1, (n, K)), rng.uniform(0.3, 0.95, (n, K)))
        amp *= np.where(rng.random((n, K)) < 0.2, 0.3, 1.0)
        mu_t = torch.from_numpy(mu).to(self.device, torch.float32)
        u = torch.arange(w, device=self.device, dtype=torch.float32)
        v = torch.arange(h, device=self.device, dtype=torch.float32)
        gx = torch.exp(-(u - mu_t[..., 0:1]) ** 2 / 8.0)                        # (n, K, w)
        gy = torch.exp(-(v - mu_t[..., 1:2]) ** 2 / 8.0)                        # (n, K, h)
        amp_t = torch.from_numpy(amp).to(self.device, torch.float32)
        maps = (amp_t[..., None, None] * gy[..., :, None]) * gx[..., None, :]
        pick = torch.from_numpy(rng.integers(0, len(self.noise), n)).to(self.device)
        return maps + self.noise[pick]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=104_125)
    parser.add_argument("--images", type=int, default=5_000)
    parser.add_argument("--chunk", type=int, default=1024, help="boxes per decode call (one model batch)")
    parser.add_argument("--reference-boxes", type=int, default=None,
                        help="decode only the first N boxes with the reference too (default: all)")
    parser.add_argument("--device", default="cpu", help="where udp_decode runs: cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ref_boxes = args.boxes if args.reference_boxes is None else min(args.reference_boxes, args.boxes)
    header("evaluation post-processing at COCO scale (issue 17, item 1)",
           device=f"{device} (decode); rescoring + NMS on the CPU",
           workload=f"{args.boxes} boxes, {args.images} images, heatmaps ({K}, {HEATMAP[0]}, {HEATMAP[1]}) "
                    f"float32 in chunks of {args.chunk} boxes; refinement in float64",
           reference=f"udp_decode_reference on the first {ref_boxes} boxes; today's topdown_results")

    rng = np.random.default_rng(args.seed)
    image_ids, centers, scales, box_scores, joints = synthetic_detections(rng, args.boxes, args.images)
    make = HeatmapMaker(rng, device)
    new_xy, new_s = [], []
    t_new = t_ref = 0.0
    cpu_new = cpu_ref = 0.0          # process CPU seconds (all threads): less sensitive to other load
    worst_hm = worst_img = 0.0
    score_mismatch = 0
    start_all = time.perf_counter()
    for c, start in enumerate(range(0, args.boxes, args.chunk)):
        part = slice(start, min(start + args.chunk, args.boxes))
        maps_t = make(centers[part], scales[part], joints[part])
        with_ref = start < ref_boxes
        maps = maps_t.cpu().numpy() if with_ref else None     # the reference decodes on the CPU
        if device.type == "cuda":
            torch.cuda.synchronize()

        def new():
            xy, s = udp_decode(maps_t)            # returns host arrays: includes the device sync
            return xy, heatmap_to_image(xy, centers[part], scales[part], HEATMAP), s

        def ref():
            xy, s = udp_decode_reference(maps)
            return xy, heatmap_to_image(xy, centers[part], scales[part], HEATMAP), s

        order = (new, ref) if c % 2 == 0 else (ref, new)        # alternate who runs on a warm cache
        for fn in order:
            if fn is ref and not with_ref:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if fn is new:
                t_new += dt
                cpu_new += dc
                n_xy, n_img, n_s = out
            else:
                t_ref += dt
                cpu_ref += dc
                r_xy, r_img, r_s = out
        new_xy.append(n_img)
        new_s.append(n_s)
        if with_ref:
            worst_hm = max(worst_hm, float(np.abs(n_xy - r_xy).max()))
            worst_img = max(worst_img, float(np.abs(n_img - r_img).max()))
            score_mismatch += int((n_s != r_s).sum())
    wall = time.perf_counter() - start_all
    coords, scores = np.concatenate(new_xy), np.concatenate(new_s)

    c0 = time.process_time()
    results_new, t_nms_new = _time(lambda: topdown_results(
        coords, scores, centers, scales, box_scores, image_ids, sigmas=COCO.sigmas))
    cpu_nms_new = time.process_time() - c0
    c0 = time.process_time()
    results_ref, t_nms_ref = _time(lambda: _reference.topdown_results(
        coords, scores, scales, box_scores, image_ids, sigmas=np.asarray(COCO.sigmas)))
    cpu_nms_ref = time.process_time() - c0
    same = results_new == results_ref

    print()
    print(f"{'step':<34s}{'new (s)':>10s}{'reference (s)':>15s}{'speed-up':>10s}")
    print(f"{'decode + map back, ' + str(ref_boxes) + ' boxes':<34s}"
          f"{t_new * ref_boxes / args.boxes if ref_boxes < args.boxes else t_new:>10.2f}"
          f"{t_ref:>15.2f}"
          f"{ratio(t_ref, t_new * ref_boxes / args.boxes) if ref_boxes < args.boxes else ratio(t_ref, t_new):>10s}"
          + ("   (new: its share of the full run)" if ref_boxes < args.boxes else ""))
    print(f"{'rescoring + OKS-NMS, all boxes':<34s}{t_nms_new:>10.2f}{t_nms_ref:>15.2f}"
          f"{ratio(t_nms_ref, t_nms_new):>10s}")
    total_new = t_new + t_nms_new
    print(f"{'total, ' + str(args.boxes) + ' boxes':<34s}{total_new:>10.2f}"
          + (f"{t_ref + t_nms_ref:>15.2f}{ratio(t_ref + t_nms_ref, total_new):>10s}"
             if ref_boxes == args.boxes else f"{'(partial)':>15s}"))
    print(f"CPU seconds (all threads): new decode {cpu_new:.2f} + NMS {cpu_nms_new:.2f} = "
          f"{cpu_new + cpu_nms_new:.2f}; reference decode ({ref_boxes} boxes) {cpu_ref:.2f}, NMS {cpu_nms_ref:.2f}")
    print()
    print(f"goal: new total <= 15 s on a 2-core CPU -> {total_new:.2f} s "
          f"({'met' if total_new <= 15 else 'NOT met'}; device {device})")
    print(f"decoded coordinates vs reference: max |diff| {worst_hm:.2e} heatmap px, {worst_img:.2e} image px "
          f"(goal <= 1e-4 px: {'met' if worst_img <= 1e-4 else 'NOT met'}); scores differing: {score_mismatch}")
    print(f"COCO results identical to today's post-processing: {same} ({len(results_new)} kept of "
          f"{args.boxes}); wall time incl. synthetic heatmaps {wall:.0f} s")
    return 0 if same and worst_img <= 1e-4 and score_mismatch == 0 else 1


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
