"""Throughput and peak memory of a model: inference (paper Table 9, Fig. 1) and, on request, a
training step (Tables 5 and 6, "Training Memory (M)").

GPU: bf16 autocast by default (`precision="fp32"` for the released speed protocol), cudnn.benchmark,
synchronised timing, peak memory = torch.cuda.max_memory_allocated in MiB (what mmcv logs as
"memory", the paper's unit), reset before each phase's model is built so weights, gradients,
optimizer state and activations all count.
CPU: fp32 by default. Peak memory is the process's peak resident set size during the phase minus its
resident size before the phase's model was built. It includes allocator caching and everything else
the process touches, so it is not comparable with a GPU number; when the process already had a
higher peak before the phase, the phase's peak cannot be measured and is reported as null.
"""
from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from vitpose.engine.optim import adamw
from vitpose.models.build import build_model
from vitpose.models.config import ModelConfig

MIB = 2 ** 20


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"CPU {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()}"


def _rss_bytes() -> int | None:
    """Current resident set size (Linux /proc), or None where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class _PeakMemory:
    """Peak memory of one phase (see the module docstring): start() before building, result() after."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.measure = ("torch.cuda.max_memory_allocated (MiB)" if self.cuda
                        else "process peak RSS increase (MiB)")

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.rss_before, self.peak_before = _rss_bytes(), _max_rss_bytes()

    def result(self) -> tuple[float | None, str]:
        if self.cuda:
            return (round(torch.cuda.max_memory_allocated(self.device) / MIB, 1),
                    "GPU: peak allocated by PyTorch (weights, gradients, optimizer state, activations)")
        peak = _max_rss_bytes()
        if self.rss_before is None:
            return None, "CPU: resident set size unavailable on this platform"
        if peak <= self.peak_before:
            return None, ("CPU: the process's peak RSS predates this phase, so the phase's peak cannot "
                          "be measured; run it in a fresh process")
        return round((peak - self.rss_before) / MIB, 1), (
            "CPU: peak resident set size of the process minus its size before the model was built "
            "(weights, activations, optimizer state, allocator caching); not comparable with GPU memory")


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def benchmark(
    cfg: ModelConfig | dict,
    batch: int = 64,
    iters: int = 20,
    train: bool = False,
    device: str | torch.device | None = None,
    warmup: int = 5,
    progress: bool = True,
    precision: str | None = None,
    teacher: ModelConfig | dict | None = None,
    activation_checkpointing: bool = False,
    compile: bool = False,
) -> dict:
    """Images/s over `iters` timed steps after `warmup` untimed ones, and peak memory; one record.

    Always measures inference (forward in inference mode). train True also measures a training
    step: forward, MSE against random target heatmaps, backward, AdamW over the trainable parameters
    (frozen parts save gradient and optimizer memory). Each phase builds its own model.
    precision: "bf16" or "fp16" (autocast; fp16 with gradient scaling) or "fp32"; default bf16 on GPU,
    fp32 on CPU. The training step's AdamW is the fused one on CUDA (as in training, engine/optim.py).
    activation_checkpointing: the training step recomputes block activations in the backward pass
    (`train.activation_checkpointing`). compile: time `torch.compile(model)` (both phases).

    teacher: a heatmap-distillation teacher (Table 8): the training step also runs its forward pass
    (eval mode, no gradient) on the same images and adds the MSE to its heatmaps, so the memory column
    counts the teacher's weights and forward.

    Besides the per-phase `inference` / `train` entries, the record carries the two metrics.json
    entries (docs/DEVELOPING.md): `throughput` {images_per_s, device, batch, precision} (inference)
    and `train_memory_MB` (the training step's peak; null without `train`).
    """
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    if isinstance(teacher, dict):
        teacher = ModelConfig.from_dict(teacher)
    if batch < 1 or iters < 1 or warmup < 0:
        raise ValueError(f"benchmark: expected batch >= 1, iters >= 1, warmup >= 0; got {batch}, {iters}, {warmup}")
    device = _resolve_device(device)
    precision = precision or ("bf16" if device.type == "cuda" else "fp32")
    if precision not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"precision: expected 'bf16', 'fp16' or 'fp32', got {precision!r}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    options = {"activation_checkpointing": activation_checkpointing, "compile": compile}
    phases = {"inference": _run_phase(cfg, batch, iters, warmup, device, precision, False, progress,
                                      compile=compile)}
    phases["train"] = (_run_phase(cfg, batch, iters, warmup, device, precision, True, progress, teacher,
                                  **options) if train else None)
    name = _device_name(device)
    return {
        "model": cfg.arch,
        "decoder": cfg.decoder,
        "input": list(cfg.input_size),
        "batch": batch,
        "iters": iters,
        "warmup": warmup,
        "precision": precision,
        "device": name,
        "device_type": device.type,
        "cpu_threads": None if device.type == "cuda" else torch.get_num_threads(),
        "memory_measure": _PeakMemory(device).measure,
        **phases,
        "throughput": {"images_per_s": phases["inference"]["images_per_s"], "device": name, "batch": batch,
                       "precision": precision},
        "train_memory_MB": phases["train"]["peak_memory_MB"] if train else None,
        "teacher": None if teacher is None else teacher.to_dict(),
        "activation_checkpointing": activation_checkpointing,
        "compile": compile,
        # A plain str: torch's TorchVersion would make unpickling the record import torch (~3 s in the
        # process that launched the job and waits for it, which otherwise never imports torch).
        "torch": str(torch.__version__),
        "config": cfg.to_dict(),
    }


def _run_phase(
    cfg: ModelConfig, batch: int, iters: int, warmup: int, device: torch.device, precision: str,
    train: bool, progress: bool, teacher: ModelConfig | None = None,
    activation_checkpointing: bool = False, compile: bool = False,
) -> dict:
    """Build a fresh model, warm up, time `iters` steps -> images_per_s, seconds_per_iter, peak memory."""
    memory = _PeakMemory(device)
    memory.start()
    model = build_model(cfg).to(device)
    if activation_checkpointing:
        model.backbone.set_grad_checkpointing(True)
    frozen = None
    if train and teacher is not None:
        frozen = build_model(teacher).to(device).eval().requires_grad_(False)
    images = torch.randn(batch, 3, *cfg.input_size, device=device)
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(device_type=device.type, dtype=low or torch.bfloat16, enabled=low is not None)
    net = torch.compile(model) if compile else model
    if train:
        step = _train_step(model, images, (cfg.num_keypoints, *cfg.heatmap_size), autocast, frozen,
                           scaled=precision == "fp16", net=net)
    else:
        step = _inference_step(net, images, autocast)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in tqdm(range(iters), desc=f"benchmark {cfg.arch} {'train' if train else 'inference'}",
                  disable=not progress, leave=False):
        step()
    sync()
    elapsed = time.perf_counter() - start
    peak, note = memory.result()
    return {
        "images_per_s": round(batch * iters / elapsed, 2),
        "seconds_per_iter": round(elapsed / iters, 5),
        "peak_memory_MB": peak,
        "memory_note": note,
    }


def _inference_step(model: torch.nn.Module, images: torch.Tensor, autocast) -> Callable[[], None]:
    model.eval()

    def step() -> None:
        with torch.inference_mode(), autocast:
            model(images)

    return step


def _train_step(
    model: torch.nn.Module, images: torch.Tensor, heatmap_shape: tuple[int, int, int], autocast,
    teacher: torch.nn.Module | None = None, scaled: bool = False, net: torch.nn.Module | None = None,
) -> Callable[[], None]:
    """One training step on random targets (B, K, h, w): forward, MSE, backward, AdamW (with a
    teacher: its no-grad forward and the MSE to its heatmaps as well). `scaled`: fp16 gradient
    scaling; `net`: what the forward calls (a compiled `model`)."""
    model.train()
    net = model if net is None else net
    params = [p for p in model.parameters() if p.requires_grad]
    # The value of lr is irrelevant to speed and memory; fused where training fuses it (engine/optim.py).
    optimizer = adamw(params, lr=1e-5)
    scaler = torch.amp.GradScaler(images.device.type, enabled=scaled)
    target = torch.rand(images.shape[0], *heatmap_shape, device=images.device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            heatmaps = net(images)
        loss = F.mse_loss(heatmaps.float(), target)
        if teacher is not None:
            with torch.no_grad(), autocast:
                soft = teacher(images)
            loss = loss + F.mse_loss(heatmaps.float(), soft.float())
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step
