"""The top-down training loop: one function, resumable, single-process or DDP.

`train(cfg, work_dir, out_checkpoint)` trains the configured model on the configured COCO-format
data and exports the final weights in the released ViTPose checkpoint format. Resumable state lives
in `work_dir` (not a declared output): `last.pth` (see engine/checkpoint.py) and `train_log.jsonl`
(one JSON object per logged iteration: iter, epoch, loss, lr, time).

Exact resume. The data order is a DistributedSampler permutation seeded with seed + epoch and each
sample's augmentation is drawn from (seed, epoch, index) (vitpose/data/loader.py), so the batches of
an epoch do not depend on the worker count or on earlier epochs. A run resumed mid-epoch rebuilds the
epoch's loader, replays (loads and discards) the batches it had already trained on, then restores the
saved RNG states (dropout / drop-path) — on CPU the weights end bit-identical to an uninterrupted run.

Distributed: with WORLD_SIZE > 1 in the environment (torchrun, or the SLURM launcher) every rank
trains on its 1 / world_size share of each epoch, `batch_size` being the global batch; only rank 0
writes files.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from vitpose.config import RunConfig, config_hash, resolve_path
from vitpose.data.dataset import TopDownCocoDataset
from vitpose.data.keypoints import get_meta
from vitpose.data.loader import build_dataloader
from vitpose.engine import distributed as D
from vitpose.engine.checkpoint import load_state, restore_rng_state, save_state
from vitpose.engine.loss import keypoint_mse_loss
from vitpose.engine.optim import build_optimizer
from vitpose.engine.schedule import build_scheduler
from vitpose.models import build_model
from vitpose.utils.errors import CheckpointError, ConfigError, DataError
from vitpose.utils.io import atomic_write_text

STATE_FILE = "last.pth"
LOG_FILE = "train_log.jsonl"


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for 'auto' | 'fp32' | 'bf16' | 'fp16'; None means plain fp32.

    'auto' is bf16 on GPU (the released models train stably in it) and fp32 on CPU, where bf16
    autocast is slow and would break bit-exact resume tests for no gain.

    'fp16' exists for the paper's Table 5 full-attention row (fp16 to fit GPU memory); on CPU it
    means fp32, since float16 autocast there is many times slower and saves nothing that matters.
    """
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision == "fp16" and device.type != "cuda":
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def train_device(local_rank: int = 0) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def build_train_dataset(cfg: RunConfig) -> TopDownCocoDataset:
    """Ground-truth person crops of the training split, with the released augmentation."""
    data = cfg.data
    return TopDownCocoDataset(
        ann_file=data.resolve("train_ann"),
        img_dir=data.resolve("train_images"),
        meta=get_meta(data.keypoints),
        input_size=tuple(cfg.model.input_size),
        heatmap_size=tuple(cfg.model.heatmap_size),
        train=True,
        sigma=data.sigma,
    )


def load_pretrained(model: torch.nn.Module, path: Path) -> None:
    """Initialise from an MAE file (`model` entry: backbone only) or a released ViTPose file
    (`state_dict` entry: every matching weight, the rest keeps its initialisation)."""
    from vitpose.models.checkpoint import load_mae_checkpoint, load_vitpose_checkpoint

    if not path.is_file():
        raise CheckpointError(f"{path}: pretrained checkpoint not found (config key 'pretrained')")
    try:  # peek at the top-level keys without reading a multi-GB file into memory
        top = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # legacy (non-zip) files cannot be mapped; the loaders report real errors
        top = {}
    if isinstance(top, dict) and "model" in top:
        load_mae_checkpoint(model, path)
    else:
        load_vitpose_checkpoint(model, path, strict=False)


def build_model_for_training(cfg: RunConfig) -> torch.nn.Module:
    """The configured model, initialised from `cfg.pretrained` when given."""
    model = build_model(cfg.model)
    if cfg.pretrained:
        load_pretrained(model, resolve_path(cfg.pretrained))
    return model


def export_checkpoint(model: torch.nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
    """Final weights in the released ViTPose format (`state_dict` + `meta`), written atomically."""
    from vitpose.models.checkpoint import save_vitpose_checkpoint

    meta = {"run": cfg.run, "scale": cfg.scale, "config_hash": config_hash(cfg.to_dict()),
            "iterations": summary["iterations"], "epochs": cfg.train.epochs,
            "train_time_s": summary["train_time_s"]}
    save_vitpose_checkpoint(model, path, meta=meta)


class TrainLog:
    """`train_log.jsonl`, appended by rank 0; on resume, entries past the restored iteration go."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def truncate_after(self, iteration: int) -> None:
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["iter"] <= iteration]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _stop_requested(should_stop: Callable[[], bool] | None, device: torch.device) -> bool:
    """Whether any rank's `should_stop` fired (all ranks must stop at the same iteration).

    A collective under DDP: every rank calls it every iteration. (vitpose.launch's flag reduces
    across ranks itself; reducing again here keeps plain callables safe too.)
    """
    if should_stop is None:
        return False
    flag = torch.tensor([1.0 if should_stop() else 0.0], device=device)  # NCCL needs a CUDA tensor
    if D.get_world_size() > 1:
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


def train(
    cfg: RunConfig,
    work_dir: str | os.PathLike,
    out_checkpoint: str | os.PathLike,
    resume: bool = True,
    stop_after_iters: int | None = None,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Train `cfg.model` on `cfg.data` with `cfg.train`; export the weights to `out_checkpoint`.

    resume: continue from `work_dir/last.pth` when present (else start over).
    stop_after_iters: save the state and return after this many iterations in total (simulates a
        kill in tests); should_stop: polled every iteration (e.g. a SLURM pre-emption signal), same
        effect. Both return a summary with `interrupted` True and export nothing.
    Returns a summary dict (iterations, epochs, iters_per_epoch, final_loss, effective_lr,
    world_size, precision, interrupted, resumed_from, wall_time_s, checkpoint).
    """
    t_start = time.time()
    if cfg.unavailable:
        raise ConfigError(f"run {cfg.run}: unavailable: {cfg.unavailable}")
    info = D.init_from_env()
    device = train_device(info.local_rank)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    work_dir = Path(work_dir)
    out_checkpoint = Path(out_checkpoint)
    main = info.is_main
    if main:
        work_dir.mkdir(parents=True, exist_ok=True)

    tc = cfg.train
    if tc.batch_size % info.world_size:
        raise ConfigError(f"train.batch_size: {tc.batch_size} does not split evenly over "
                          f"{info.world_size} processes")
    # Same seed on every rank: identical initial weights (DDP also broadcasts them).
    torch.manual_seed(cfg.seed)
    model = build_model_for_training(cfg).to(device)
    dataset = build_train_dataset(cfg)
    per_rank_batch = tc.batch_size // info.world_size
    loader = build_dataloader(dataset, batch_size=per_rank_batch, shuffle=True,
                              num_workers=cfg.data.num_workers, seed=cfg.seed, drop_last=True,
                              distributed=info.world_size > 1)
    iters_per_epoch = len(loader)
    if iters_per_epoch == 0:
        raise DataError(f"{cfg.data.resolve('train_ann')}: {len(dataset)} training instances give no "
                        f"full batch of {per_rank_batch} per process; lower train.batch_size")
    total_iters = tc.epochs * iters_per_epoch

    optimizer = build_optimizer(model, tc.effective_lr, tc.weight_decay, tc.betas, tc.layer_decay)
    scheduler = build_scheduler(optimizer, iters_per_epoch, tc.milestones, tc.gamma,
                                tc.warmup_iters, tc.warmup_ratio)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    chash = config_hash(cfg.to_dict())
    state_path = work_dir / STATE_FILE
    log = TrainLog(work_dir / LOG_FILE, enabled=main)

    iteration, saved_rng, time_before = 0, None, 0.0  # time_before: earlier segments of this run
    loss_sum, loss_count = torch.zeros((), dtype=torch.float64, device=device), 0  # open log interval
    if resume and state_path.exists():
        # CPU map: RNG states must stay CPU tensors; weights and moments are copied to the device.
        state = load_state(state_path, model=model, optimizer=optimizer, scheduler=scheduler,
                           restore_rng=False, map_location="cpu")
        extra = state["extra"]
        if extra.get("config_hash") != chash or extra.get("iters_per_epoch") != iters_per_epoch:
            raise CheckpointError(
                f"{state_path}: training state of a different configuration (config hash or iterations "
                f"per epoch differ); delete {work_dir} to start over")
        iteration, saved_rng = state["iteration"], state["rng"]
        time_before = float(extra.get("train_time_s", 0.0))
        loss_sum.fill_(extra.get("loss_sum", 0.0))
        loss_count = int(extra.get("loss_count", 0))
        log.truncate_after(iteration)
    else:
        log.reset()
    resumed_from = iteration
    # Augmentation is keyed by (seed, epoch, index); dropout / drop-path differ per rank.
    torch.manual_seed(cfg.seed + 1000 * info.rank + 1)

    net = model
    if info.world_size > 1:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def save(epoch: int) -> None:
        if main:
            save_state(state_path, model=model, optimizer=optimizer, scheduler=scheduler,
                       epoch=epoch, iteration=iteration,
                       extra={"config_hash": chash, "iters_per_epoch": iters_per_epoch, "seed": cfg.seed,
                              "train_time_s": time_before + time.time() - t_start,
                              # the open log interval, so a resumed run logs the same means
                              "loss_sum": float(loss_sum), "loss_count": loss_count})
        D.barrier()

    bar = tqdm(total=total_iters, initial=iteration, desc=f"train {cfg.run}", unit="it",
               disable=not (progress and main), dynamic_ncols=True)
    autocast = (torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None
                else nullcontext())
    t_log, final_loss = time.time(), math.nan
    interrupted = False
    model.train()
    start_epoch = iteration // iters_per_epoch
    for epoch in range(start_epoch, tc.epochs):
        if interrupted or (stop_after_iters is not None and iteration >= stop_after_iters):
            interrupted = True
            break
        loader.sampler.set_epoch(epoch)
        batches = iter(loader)
        for _ in range(iteration - epoch * iters_per_epoch):  # mid-epoch resume: replay
            next(batches)
        if saved_rng is not None:
            restore_rng_state(saved_rng)
            saved_rng = None
        for batch in batches:
            images = batch["img"].to(device, non_blocking=True)               # (B, 3, H, W)
            target = batch["target"].to(device, non_blocking=True)            # (B, K, h, w)
            weight = batch["target_weight"].to(device, non_blocking=True)     # (B, K)
            with autocast:
                heatmaps = net(images)                                        # (B, K, h, w)
            loss = keypoint_mse_loss(heatmaps, target, weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            iteration += 1
            loss_sum += loss.detach()
            loss_count += 1
            bar.update(1)

            if iteration % tc.log_every_iters == 0 or iteration == total_iters:
                mean_loss = float(D.all_reduce_mean(loss_sum / loss_count).float())
                if not math.isfinite(mean_loss):  # checked here, not per step: no GPU sync per step
                    raise FloatingPointError(f"run {cfg.run}: training loss became {mean_loss} "
                                             f"by iteration {iteration}")
                lr = max(g["lr"] for g in optimizer.param_groups)
                now = time.time()
                log.write({"iter": iteration, "epoch": epoch, "loss": mean_loss, "lr": lr,
                           "time": (now - t_log) / loss_count})
                bar.set_postfix(loss=f"{mean_loss:.3g}", lr=f"{lr:.2e}")
                final_loss, loss_sum, loss_count, t_log = mean_loss, loss_sum * 0, 0, now
            if (stop_after_iters is not None and iteration >= stop_after_iters) or _stop_requested(should_stop, device):
                interrupted = iteration < total_iters
                break
        if interrupted:
            save(epoch)
            break
        if (epoch + 1) % tc.checkpoint_every_epochs == 0 or epoch + 1 == tc.epochs:
            save(epoch + 1)
    bar.close()

    summary = {
        "run": cfg.run,
        "iterations": iteration,
        "total_iters": total_iters,
        "epochs": tc.epochs,
        "iters_per_epoch": iters_per_epoch,
        "final_loss": final_loss,
        "effective_lr": tc.effective_lr,
        "world_size": info.world_size,
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype],
        "interrupted": interrupted,
        "resumed_from": resumed_from,
        "wall_time_s": time.time() - t_start,
        "train_time_s": time_before + time.time() - t_start,  # all segments of this run
        "checkpoint": None,
    }
    if not interrupted:
        if main:
            export_checkpoint(model, out_checkpoint, cfg, summary)
        summary["checkpoint"] = str(out_checkpoint)
        D.barrier()
    return summary
