"""Training data pipeline throughput: JPEG decode → augmentation → UDP warp → target, per CPU core.

Writes (once, into --data) synthetic COCO-sized training images: the embedded puppet scenes at 640 × 480
with sensor-like noise so that the JPEGs weigh what COCO's do (~150 kB), and their COCO annotations.
Then, in one process with one thread (so CPU seconds are core seconds), alternating passes over every
person instance:

- new: the library's `TopDownCocoDataset.sample` (what the training DataLoader's workers run);
- plain: the plain pipeline (benchmarks/_reference.py `plain_sample`: cv2 decode + RGB conversion,
  numpy flip, scipy truncated normal, one warpAffine, whole-map numpy target, float normalisation),
  which is what the library did before issue 17; every sample is checked to be identical.

It prints images/s per core for both, the share of each step of the new path, and with --workers N the
DataLoader's images/s with N worker processes (batch 64).

    python benchmarks/data_pipeline.py [--images 48] [--passes 3] [--workers 2] [--data /tmp/vitpose-bench-jpegs]

Goal (issue 17): >= 250 images/s per core (~190 before), so that 16 cores feed >= 4,000 images/s.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import _common  # noqa: F401  (puts the repository root on sys.path)
from _common import header

import torch

from benchmarks import _reference
from vitpose.data.affine import transform_points, udp_warp_matrix, warp_image
from vitpose.data.codec import udp_encode
from vitpose.data.dataset import SampleKey, TopDownCocoDataset
from vitpose.data.image_io import read_image_bgr
from vitpose.data.keypoints import COCO
from vitpose.data.transforms import augment, bbox_xyxy_to_center_scale, fix_aspect_ratio, normalize_image, sample_rng

ANNOTATIONS = "annotations/person_keypoints_train2017.json"


def make_coco_jpegs(root: Path, images: int, seed: int = 0) -> Path:
    """COCO-sized JPEG training images with annotations under `root`/<images>-<seed> (reused when
    already there); returns that directory."""
    from vitpose.data.synthetic import generate_synthetic_coco

    root = root / f"{images}-images-seed-{seed}"
    marker = root / ".complete"
    if marker.exists():
        return root
    generate_synthetic_coco(root, seed=seed, num_train=images, num_val=1, image_size=(480, 640), progress=False)
    rng = np.random.default_rng(seed)
    for path in sorted((root / "train2017").glob("*.jpg")):
        image = cv2.imread(str(path))
        noisy = np.clip(image + rng.normal(0.0, 14.0, image.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])
        path.write_bytes(buf.tobytes())
    marker.touch()
    return root


def build_dataset(root: Path) -> TopDownCocoDataset:
    return TopDownCocoDataset(root / ANNOTATIONS, root / "train2017", COCO, train=True)


def step_shares(ds: TopDownCocoDataset, epoch: int) -> dict[str, float]:
    """CPU seconds of each step of `TopDownDataset.sample`, replayed with the same library calls."""
    clock = time.process_time
    steps = dict.fromkeys(["read + JPEG decode", "augmentation draws", "UDP warp", "BGR→RGB (crop)",
                           "UDP target", "normalise"], 0.0)
    for index, inst in enumerate(ds.instances):
        t0 = clock()
        image = read_image_bgr(ds.img_dir / inst.file_name)
        t1 = clock()
        keypoints = inst.keypoints[:, :2].copy()
        visible = np.minimum(inst.keypoints[:, 2], 1.0).astype(np.float32)
        center, scale = bbox_xyxy_to_center_scale(np.array(inst.bbox))
        image, keypoints, visible, center, scale, rotation, _ = augment(
            image, keypoints, visible, center, scale, ds.meta, ds.aug, sample_rng(0, epoch, index))
        t2 = clock()
        scale = fix_aspect_ratio(scale, ds.input_size[1] / ds.input_size[0])
        matrix = udp_warp_matrix(center, scale, rotation, ds.input_size)
        crop = warp_image(image, matrix, ds.input_size)
        t3 = clock()
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        t4 = clock()
        udp_encode(transform_points(keypoints, matrix), visible, ds.input_size, ds.heatmap_size, ds.sigma)
        t5 = clock()
        normalize_image(crop)
        t6 = clock()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            steps[key] += dt
    return steps


class _Repeat(torch.utils.data.Dataset):
    """`times` epochs of `base` as one (for a DataLoader measurement long enough for many workers)."""

    accepts_sample_keys = True

    def __init__(self, base, times: int) -> None:
        self.base, self.times = base, times

    def __len__(self) -> int:
        return len(self.base) * self.times

    def __getitem__(self, key: SampleKey):
        return self.base.sample(key.index % len(self.base), key.epoch, key.seed, rng_index=key.index)


def loader_images_per_s(ds, workers: int, batch: int, min_samples: int) -> tuple[float, int]:
    """Images/s of `build_dataloader` with `workers` processes over >= min_samples samples (after one
    untimed warm-up batch per worker)."""
    from vitpose.data.loader import build_dataloader

    needed = min_samples + (workers + 1) * batch          # the warm-up batches come on top
    repeat = _Repeat(ds, max(1, -(-needed // len(ds))))
    loader = build_dataloader(repeat, batch_size=batch, shuffle=True, num_workers=workers, seed=0,
                              drop_last=True)
    it = iter(loader)
    for _ in range(max(1, workers)):
        next(it)
    count, start = 0, time.perf_counter()
    for batch_ in it:
        count += batch_["img"].shape[0]
    return count / (time.perf_counter() - start), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="synthetic 640x480 JPEGs (about 2.3 persons each)")
    parser.add_argument("--passes", type=int, default=3, help="alternating passes over every instance")
    parser.add_argument("--workers", type=int, default=0, help="also time the DataLoader with N workers")
    parser.add_argument("--loader-samples", type=int, default=2048)
    parser.add_argument("--data", default="/tmp/vitpose-bench-jpegs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(0)          # what each DataLoader worker does (vitpose.data.loader)
    root = make_coco_jpegs(Path(args.data), args.images)
    ds = build_dataset(root)
    sizes = [p.stat().st_size for p in (root / "train2017").glob("*.jpg")]
    header("training data pipeline, per core (issue 17, item 2)",
           device="CPU, 1 thread (torch 1, OpenCV 0): images/s per core = samples / CPU seconds",
           workload=f"{len(ds)} person instances on {len(sizes)} JPEGs of 640x480, mean "
                    f"{np.mean(sizes) / 1024:.0f} kB; crop 256x192, heatmap 64x48, training augmentation",
           reference="plain pipeline (benchmarks/_reference.py plain_sample), same draws, checked equal")

    clock = time.process_time
    cpu = {"new": 0.0, "plain": 0.0}
    wall = {"new": 0.0, "plain": 0.0}
    mismatches = 0
    for p in range(args.passes):
        for name in (("new", "plain") if p % 2 == 0 else ("plain", "new")):
            c0, w0 = clock(), time.perf_counter()
            outs = [ds.sample(i, epoch=p, seed=0) if name == "new" else _reference.plain_sample(ds, i, p, 0)
                    for i in range(len(ds))]
            cpu[name] += clock() - c0
            wall[name] += time.perf_counter() - w0
            if name == "new":
                new_outs = outs
            else:
                plain_outs = outs
        for a, b in zip(new_outs, plain_outs):
            mismatches += not all(np.array_equal(np.asarray(a[k]), b[k]) for k in ("img", "target", "target_weight"))
    n = len(ds) * args.passes
    rate = {k: n / v for k, v in cpu.items()}
    print()
    print(f"{'pipeline':<10s}{'img/s per core (CPU s)':>24s}{'img/s (wall)':>14s}")
    for k in ("new", "plain"):
        print(f"{k:<10s}{rate[k]:>24.1f}{n / wall[k]:>14.1f}")
    print(f"speed-up new vs plain: {rate['new'] / rate['plain']:.2f}x; samples identical: "
          f"{mismatches == 0} ({mismatches} of {n} differ)")
    print(f"goal >= 250 img/s per core: {'met' if rate['new'] >= 250 else 'NOT met'} ({rate['new']:.0f}); "
          f"16 cores at this rate: {16 * rate['new']:.0f} img/s")

    steps = step_shares(ds, epoch=0)
    total = sum(steps.values())
    print("\nnew path, share of each step (CPU time):")
    for key, value in steps.items():
        print(f"  {key:<22s}{value / len(ds) * 1e3:7.2f} ms  {value / total:5.1%}")

    if args.workers:
        ips, count = loader_images_per_s(ds, args.workers, 64, args.loader_samples)
        print(f"\nDataLoader, {args.workers} workers, batch 64: {ips:.0f} img/s ({count} samples, wall)")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
