"""Issue 17's GPU measurements in one command (about 5-8 minutes on one H100 / H200).

    python benchmarks/gpu_suite.py [--json out.json] [--skip compile,loader,...]
    python benchmarks/gpu_suite.py --tiny        # the same code end to end on the CPU, tiny models, < 1 min

Prints, each with device, batch and precision:
1. inference images/s at batch 64 for ViTPose-B/L/H in fp32 (the paper's protocol: A100 944 / 411 / 241)
   and bf16 autocast with scaled-dot-product attention, torch.compile of ViTPose-B in bf16, and
   transformers' VitPose-B on the same GPU with the same weights (alternating rounds, same process);
2. a ViTPose-B training step at batch 64 (forward, MSE, backward, fused AdamW): images/s and peak
   memory in bf16, bf16 + activation checkpointing, and fp32; Table 5's full-attention 1/8-feature row
   (ratio 2) in fp16 (paper 36,141 MB); paper's training memory 14,090 MB;
3. the training DataLoader's images/s with 16 workers on synthetic COCO-sized JPEGs;
4. COCO-scale evaluation post-processing (104,125 boxes) with decoding on the GPU.
Goals (H100/H200): ViTPose-B bf16 inference >= 10,000 img/s and >= 1.5x HF; training >= 3,500 img/s;
training memory at batch 64 <= 7,000 MB.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repository root on sys.path)
from _common import header

import torch

import data_pipeline
import inference
import postprocess
from vitpose.models import ModelConfig
from vitpose.models.benchmark import benchmark
from vitpose.utils.io import atomic_write_text

SECTIONS = ("inference", "compile", "hf", "train", "loader", "postprocess")


def _settings(tiny: bool) -> dict:
    if tiny:  # same code paths, CPU-sized: a 1-block ViT, 2 images, one round
        return dict(device=torch.device("cpu"), batch=2, rounds=1, iters=1, warmup=0, train_iters=1,
                    models=["vitpose-b", "vitpose-l", "vitpose-h"],
                    overrides=dict(depth=1, embed_dim=96, num_heads=2, input_size=(64, 48)),
                    workers=2, loader_samples=8, images=2, boxes=300, images_pp=20, reference_boxes=300)
    return dict(device=torch.device("cuda"), batch=64, rounds=3, iters=10, warmup=3, train_iters=20,
                models=["vitpose-b", "vitpose-l", "vitpose-h"], overrides={},
                workers=16, loader_samples=8192, images=64, boxes=104_125, images_pp=5_000, reference_boxes=2048)


def run_inference(s: dict, skip: set[str], records: list) -> None:
    print("\n== 1. inference, batch", s["batch"])
    for arch in s["models"]:
        cfg = ModelConfig(arch=arch, decoder="classic", **s["overrides"])
        with_hf = arch == "vitpose-b" and "hf" not in skip
        for precision in ("fp32", "bf16"):
            compile_ = arch == "vitpose-b" and precision == "bf16" and "compile" not in skip
            for rec in inference.compare(cfg, s["device"], s["batch"], [precision], s["rounds"], s["iters"],
                                         s["warmup"], compile_=compile_, with_hf=with_hf):
                records.append({"section": "inference", **rec})
        torch.cuda.empty_cache() if torch.cuda.is_available() else None


def run_train(s: dict, records: list) -> None:
    print("\n== 2. training step, batch", s["batch"])
    runs = [("vitpose-b", {}, "bf16", False), ("vitpose-b", {}, "bf16", True), ("vitpose-b", {}, "fp32", False),
            ("vitpose-b 1/8 full (Table 5)", {"ratio": 2}, "fp16", False)]
    for name, extra, precision, ckpt in runs:
        cfg = ModelConfig(arch="vitpose-b", decoder="classic", **s["overrides"], **extra)
        r = benchmark(cfg, batch=s["batch"], iters=s["train_iters"], warmup=s["warmup"], train=True,
                      device=s["device"], precision=precision, progress=False, activation_checkpointing=ckpt)
        t = r["train"]
        label = f"{name}{' + activation checkpointing' if ckpt else ''}"
        print(f"  {label:<48s} {r['device']} batch {r['batch']} {precision}: {t['images_per_s']:.1f} img/s, "
              f"peak memory {t['peak_memory_MB']} MB ({r['memory_measure']})", flush=True)
        records.append({"section": "train", "model": label, "precision": precision, "batch": r["batch"],
                        "device": r["device"], "images_per_s": t["images_per_s"],
                        "peak_memory_MB": t["peak_memory_MB"]})


def run_loader(s: dict, records: list) -> None:
    print(f"\n== 3. DataLoader, {s['workers']} workers, batch 64, synthetic COCO-sized JPEGs")
    root = Path(tempfile.gettempdir()) / "vitpose-bench-jpegs"
    ds = data_pipeline.build_dataset(data_pipeline.make_coco_jpegs(root, s["images"]))
    ips, count = data_pipeline.loader_images_per_s(ds, s["workers"], min(64, s["loader_samples"]),
                                                   s["loader_samples"])
    print(f"  {ips:.0f} img/s over {count} samples ({len(ds)} instances on {s['images']} JPEGs, repeated)")
    records.append({"section": "loader", "workers": s["workers"], "images_per_s": ips, "samples": count})


def run_postprocess(s: dict, records: list) -> None:
    print("\n== 4. evaluation post-processing at COCO scale")
    start = time.perf_counter()
    status = postprocess.main(["--device", s["device"].type, "--boxes", str(s["boxes"]),
                               "--images", str(s["images_pp"]), "--reference-boxes", str(s["reference_boxes"])])
    records.append({"section": "postprocess", "status": status, "wall_s": time.perf_counter() - start})


PAPER_A100_FP32 = {"vitpose-b": 944, "vitpose-l": 411, "vitpose-h": 241}


def summary(records: list[dict]) -> None:
    """Every figure beside its goal or the paper's number."""
    print("\n== summary (figure | goal or paper)")
    for r in records:
        if r["section"] == "inference":
            ours = max(v for k, v in r.items() if k.startswith("ours"))
            note = f"paper A100 fp32 {PAPER_A100_FP32.get(r['model'].split('(')[0], '-')}" \
                if r["precision"] == "fp32" else "goal ViTPose-B >= 10,000"
            hf = f"; ours/HF {r['ratio']:.2f}x (goal bf16 >= 1.5x)" if "ratio" in r else ""
            print(f"  inference {r['model']} {r['precision']} batch {r['batch']}: {ours:.0f} img/s | {note}{hf}")
        elif r["section"] == "train":
            print(f"  train {r['model']} {r['precision']} batch {r['batch']}: {r['images_per_s']:.0f} img/s, "
                  f"{r['peak_memory_MB']} MB | goal >= 3,500 img/s, <= 7,000 MB (paper 14,090 MB; "
                  f"Table 5 1/8 full 36,141 MB fp16)")
        elif r["section"] == "loader":
            print(f"  DataLoader {r['workers']} workers: {r['images_per_s']:.0f} img/s | goal >= 4,000")
        elif r["section"] == "postprocess":
            print(f"  post-processing: exit status {r['status']} (0: identical to the reference), "
                  f"{r['wall_s']:.0f} s incl. synthetic heatmaps | see section 4 for the timed figure")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny models: checks the suite runs end to end")
    parser.add_argument("--skip", default="", help=f"comma-separated sections to leave out: {', '.join(SECTIONS)}")
    parser.add_argument("--json", default=None, help="also write every record to this file")
    args = parser.parse_args(argv)
    skip = {x for x in args.skip.split(",") if x}
    if args.tiny:
        skip.add("compile")  # torch.compile takes minutes on a small CPU; it is a GPU question
    if not skip <= set(SECTIONS):
        parser.error(f"--skip: unknown section(s) {sorted(skip - set(SECTIONS))}; expected {SECTIONS}")
    s = _settings(args.tiny)
    if s["device"].type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --tiny for the CPU check")
    if s["device"].type == "cuda":
        torch.backends.cudnn.benchmark = True
    tiny_note = " (--tiny: CPU, 1-block models; no figure here means anything)" if args.tiny else ""
    header("issue 17 GPU suite" + tiny_note,
           device=s["device"], batch=s["batch"])
    start = time.perf_counter()
    records: list[dict] = []
    if "inference" not in skip:
        run_inference(s, skip, records)
    if "train" not in skip:
        run_train(s, records)
    if "loader" not in skip:
        run_loader(s, records)
    if "postprocess" not in skip:
        run_postprocess(s, records)
    summary(records)
    print(f"\nsuite wall time {time.perf_counter() - start:.0f} s")
    if args.json:
        atomic_write_text(args.json, json.dumps({"tiny": args.tiny, "records": records}, indent=1, default=str))
    return 0 if all(r.get("status", 0) == 0 for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
