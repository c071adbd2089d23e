"""ViTPose inference speed against Hugging Face transformers' VitPose, same weights, same process.

Builds our model (`vitpose.models.build_model`) and `transformers.VitPoseForPoseEstimation` from the
same configuration (`vitpose.models.hf_convert.hf_config`: random init, nothing downloaded), copies our
weights into it (`released_to_hf_state`), checks that both give the same heatmaps, then times forward
passes in inference mode, alternating the two models round by round. Precisions: fp32, and bf16
(autocast for both models; on the GPU both use scaled-dot-product attention).

    python benchmarks/inference.py                                   # CPU, batch 8, fp32 and bf16
    python benchmarks/inference.py --device cuda --batch 64 --models vitpose-b,vitpose-l,vitpose-h --compile

Goal (issue 17): ViTPose-B at 256x192 >= 1.2x HF on CPU in fp32 and bf16 (batch 8); >= 1.5x HF in bf16 on
an H100/H200 (batch 64). Note: bf16 on a CPU without bf16 instructions (AVX2 only) is ~10x slower than
fp32 for both models; a CPU bf16 round of HF at batch 8 takes minutes.
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext

import _common  # noqa: F401  (puts the repository root on sys.path)
from _common import header

import torch

from vitpose.models import ModelConfig, build_model


def build_pair(cfg: ModelConfig, device="cpu", with_hf: bool = True):
    """(ours, HF) in eval mode on `device` with identical weights; (ours, None) without transformers
    or with_hf False."""
    torch.manual_seed(0)
    ours = build_model(cfg).eval()
    # Random BN statistics so that the check below compares something non-trivial.
    with torch.no_grad():
        for m in ours.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    if not with_hf:
        return ours.to(device), None
    try:
        from transformers import VitPoseForPoseEstimation

        from vitpose.models.hf_convert import hf_config, released_to_hf_state
    except ImportError:
        return ours.to(device), None
    hf = VitPoseForPoseEstimation(hf_config(cfg)).eval()
    hf.load_state_dict(released_to_hf_state(ours.state_dict(), cfg))
    return ours.to(device), hf.to(device)


def forward_fn(model, hf: bool):
    if hf:
        return lambda x: model(pixel_values=x).heatmaps
    return model


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def time_models(fns: dict, images: torch.Tensor, precision: str, rounds: int, iters: int,
                warmup: int) -> dict[str, float]:
    """Images/s of each named forward function, alternating them round by round (best round: the one
    least disturbed by other load on a shared machine; every round is printed)."""
    device = images.device

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    best = {name: 0.0 for name in fns}
    with torch.inference_mode():
        for fn in fns.values():
            for _ in range(warmup):
                with autocast(device, precision):
                    fn(images)
        sync()
        for r in range(rounds):
            order = list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]
            line = []
            for name, fn in order:
                sync()
                start = time.perf_counter()
                for _ in range(iters):
                    with autocast(device, precision):
                        fn(images)
                sync()
                ips = images.shape[0] * iters / (time.perf_counter() - start)
                best[name] = max(best[name], ips)
                line.append(f"{name} {ips:.3g}")
            print(f"    round {r + 1}: " + ", ".join(line) + " img/s", flush=True)
    return best


def compare(arch: str | ModelConfig, device: torch.device, batch: int, precisions: list[str], rounds: int,
            iters: int, warmup: int, compile_: bool = False, with_hf: bool = True) -> list[dict]:
    """One record per precision: images/s of ours (and compiled ours), HF, and the ratio."""
    cfg = arch if isinstance(arch, ModelConfig) else ModelConfig(arch=arch, decoder="classic")
    arch = cfg.arch if cfg.depth is None else f"{cfg.arch}(tiny)"
    ours, hf = build_pair(cfg, device=device, with_hf=with_hf)
    images = torch.randn(batch, 3, *cfg.input_size, device=device)
    if hf is not None:
        with torch.inference_mode():
            diff = (ours(images) - hf(pixel_values=images).heatmaps).abs().max().item()
        print(f"  {arch}: same weights, max |heatmap difference| ours vs HF (fp32): {diff:.2e}")
    records = []
    for precision in precisions:
        fns = {"ours": forward_fn(ours, False)}
        if compile_:
            fns["ours+compile"] = torch.compile(ours)
        if hf is not None:
            fns["HF"] = forward_fn(hf, True)
        print(f"  {arch} {precision} batch {batch} on {device}:")
        best = time_models(fns, images, precision, rounds, iters, warmup + (2 if compile_ else 0))
        rec = {"model": arch, "precision": precision, "batch": batch, "device": str(device), **best}
        if hf is not None:
            rec["ratio"] = max(v for k, v in best.items() if k != "HF") / best["HF"]
        records.append(rec)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vitpose-b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per precision (fp32)")
    parser.add_argument("--bf16-rounds", type=int, default=None, help="default: 2 on CPU, --rounds on GPU")
    parser.add_argument("--iters", type=int, default=2, help="forward passes per model per round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(ours)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    header("inference: ours vs transformers' VitPose (issue 17, item 3)", device=device,
           batch=args.batch, precision=args.precisions + " (bf16 = autocast for both models)")
    records = []
    for arch in args.models.split(","):
        for precision in args.precisions.split(","):
            rounds = args.rounds
            if precision == "bf16" and args.bf16_rounds is not None:
                rounds = args.bf16_rounds
            elif precision == "bf16" and device.type == "cpu":
                rounds = 2
            slow = precision == "bf16" and device.type == "cpu"   # minutes per HF forward pass
            records += compare(arch, device, args.batch, [precision], rounds, 1 if slow else args.iters,
                               0 if slow else args.warmup, args.compile)
    print()
    print(f"{'model':<11s}{'precision':<10s}{'batch':>6s}{'ours img/s':>12s}{'HF img/s':>10s}{'ours/HF':>9s}")
    for r in records:
        ours = max(v for k, v in r.items() if k.startswith("ours"))
        print(f"{r['model']:<11s}{r['precision']:<10s}{r['batch']:>6d}{ours:>12.3g}{r.get('HF', float('nan')):>10.3g}"
              f"{r.get('ratio', float('nan')):>8.2f}x")
    goal = 1.2 if device.type == "cpu" else 1.5
    for r in records:
        if "ratio" in r and (device.type == "cpu" or r["precision"] == "bf16"):
            print(f"goal {r['model']} {r['precision']}: >= {goal}x HF -> {r['ratio']:.2f}x "
                  f"({'met' if r['ratio'] >= goal else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
