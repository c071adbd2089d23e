"""The training loop: one loop for every objective, resumable, single-process or DDP.

`train(cfg, work_dir, out_checkpoint)` trains the configured model on the configured COCO-format
data and exports the final weights in the released ViTPose format; `objective=` swaps what is
trained (engine/objective.py: model, dataset, loss, export) and keeps everything here. Resumable
state lives in `work_dir` (not a declared output): `last.pth` (engine/checkpoint.py) and
`train_log.jsonl` (engine/trainlog.py: one JSON object per logged iteration: iter, epoch, loss, lr,
time, plus the objective's extra scalars).

The loop in parts (`Trainer`): `setup` (device, precision, modules, data, optimizer, schedule),
`resume` (restore `last.pth`, trim the log), `run` → `train_epoch` → `step` (one optimizer step),
`validate` (every `val_every_epochs` epochs: the objective's val scores, logged as `val_<metric>`
records of the log), `save` (at epoch ends every `checkpoint_every_epochs`, every
`checkpoint_every_iters` iterations, and when stopped) and `export` (the objective's final file).

Exact resume. The data order is a DistributedSampler permutation seeded with seed + epoch and each
sample's augmentation is drawn from (seed, epoch, index) (vitpose/data/loader.py), so the batches of
an epoch do not depend on the worker count or on earlier epochs. A run resumed mid-epoch (from an
N-iteration save or a stop) rebuilds the epoch's loader, replays (loads and discards) the batches it
had already trained on, then restores the saved RNG states (dropout / drop-path) — on CPU the weights
end bit-identical to an uninterrupted run. A process killed outright (SIGKILL, node loss) restarts
from the last save and repeats at most `checkpoint_every_iters` iterations.

Distributed: with WORLD_SIZE > 1 in the environment (torchrun, or the SLURM launcher) every rank
trains on its 1 / world_size share of each epoch, `batch_size` being the global batch; only rank 0
writes files.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from vitpose.config import RunConfig, config_hash
from vitpose.data.image_io import configure_image_cache
from vitpose.data.loader import build_dataloader
from vitpose.engine import distributed as D
from vitpose.engine.checkpoint import (RESUME_HINT, capture_rng_state, load_state, restore_rng_state,
                                       save_state)
from vitpose.engine.objective import (  # noqa: F401 - re-exported: the trainer's public names
    HeatmapObjective,
    Models,
    Objective,
    TrainModules,
    build_model_for_training,
    build_train_dataset,
    export_checkpoint,
)
from vitpose.engine.trainlog import TrainLog, write_curve
from vitpose.models.build import training_memory_format
from vitpose.models.checkpoint import load_pretrained  # noqa: F401 - re-exported (moved there)
from vitpose.utils.errors import CheckpointError, ConfigError, DataError
from vitpose.utils.io import remove_stale_temps

# The most samples one process puts through the model at once (a resource of the site, set in the
# job's environment, e.g. by a launch config's `setup` lines). When a process's share of
# `train.batch_size` is larger, each optimizer step accumulates the gradients of several micro-batches:
# the effective batch (the science, params.yaml) stays what the run says whatever the GPU count.
ENV_MICRO_BATCH = "VITPOSE_MICRO_BATCH"
STATE_FILE = "last.pth"
LOG_FILE = "train_log.jsonl"
RESERVED_LOG_KEYS = ("iter", "epoch", "loss", "lr", "time")


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


def state_hash(cfg: RunConfig) -> str:
    """The configuration a training state belongs to: the config hash without the save and validation
    cadences `train.checkpoint_every_iters` and `train.val_every_epochs` and the memory switch
    `train.activation_checkpointing` and the decoded-image cache `train.image_cache_mb`, which do not change the weights (so they may change between the segments of a run — and states written before the keys
    existed still resume)."""
    d = cfg.to_dict()
    for key in ("checkpoint_every_iters", "val_every_epochs", "activation_checkpointing", "image_cache_mb"):
        d.get("train", {}).pop(key, None)
    return config_hash(d)


def accumulation_steps(per_rank_batch: int, env: dict | None = None) -> int:
    """Micro-batches per optimizer step: the fewest that keep each at most $VITPOSE_MICRO_BATCH samples
    and split the process's batch evenly (1 when the variable is unset)."""
    text = (os.environ if env is None else env).get(ENV_MICRO_BATCH, "").strip()
    if not text:
        return 1
    try:
        cap = int(text)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ConfigError(f"${ENV_MICRO_BATCH}: expected a positive integer (samples per process and "
                          f"forward pass), got {text!r}")
    steps = -(-per_rank_batch // cap)
    while per_rank_batch % steps:
        steps += 1
    return steps


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


class LogInterval:
    """Sums of the loss (and the objective's extra scalars) over the open log interval.

    Kept as float64 tensors on the device (no GPU sync per step) and saved with the state, so that a
    resumed run logs the same means as an uninterrupted one.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {"loss": self._zero()}
        self.count = 0

    def _zero(self) -> torch.Tensor:
        return torch.zeros((), dtype=torch.float64, device=self.device)

    def add(self, loss: torch.Tensor, scalars: dict[str, torch.Tensor]) -> None:
        self.sums["loss"] += loss.detach()
        for name, value in scalars.items():
            if name in RESERVED_LOG_KEYS:
                raise ValueError(f"objective scalar {name!r}: the log reserves {RESERVED_LOG_KEYS}")
            if name not in self.sums:
                self.sums[name] = self._zero()
            self.sums[name] += value.detach() if isinstance(value, torch.Tensor) else float(value)
        self.count += 1

    def means(self) -> dict[str, float]:
        """Means over the interval, averaged over ranks (a collective under DDP)."""
        names = list(self.sums)
        mean = D.all_reduce_mean(torch.stack([self.sums[n] for n in names]) / self.count).float()
        return dict(zip(names, mean.tolist()))

    def reset(self) -> None:
        for value in self.sums.values():
            value.zero_()
        self.count = 0

    def state(self) -> dict[str, Any]:
        extra = {n: float(v) for n, v in self.sums.items() if n != "loss"}
        return {"loss_sum": float(self.sums["loss"]), "loss_count": self.count, "log_sums": extra}

    def load(self, extra: dict[str, Any]) -> None:
        self.sums["loss"].fill_(extra.get("loss_sum", 0.0))
        for name, value in extra.get("log_sums", {}).items():
            self.sums[name] = self._zero().fill_(value)
        self.count = int(extra.get("loss_count", 0))


@dataclass
class Setup:
    """Everything `Trainer` builds before the first step."""

    info: D.DistInfo
    device: torch.device
    amp_dtype: torch.dtype | None
    modules: TrainModules
    net: torch.nn.Module  # modules.model, DDP-wrapped when distributed (wrapped after resume)
    loader: torch.utils.data.DataLoader
    iters_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    epochs: int
    accumulate: int = 1  # loader (micro-)batches per optimizer step

    @property
    def total_iters(self) -> int:
        return self.epochs * self.iters_per_epoch


def setup(cfg: RunConfig, objective: Objective, info: D.DistInfo) -> Setup:
    """Device, precision, seeded modules, the data loader, optimizer, schedule and loss scaler."""
    device = train_device(info.local_rank)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    tc = cfg.train
    if tc.batch_size % info.world_size:
        raise ConfigError(f"train.batch_size: {tc.batch_size} does not split evenly over "
                          f"{info.world_size} processes")
    # Same seed on every rank: identical initial weights (DDP also broadcasts them).
    torch.manual_seed(cfg.seed)
    modules = objective.build(cfg)
    modules.model.to(device, memory_format=training_memory_format(modules.model))
    for aux in modules.frozen.values():
        aux.to(device).eval().requires_grad_(False)
    configure_image_cache(tc.image_cache_mb)
    dataset = objective.build_dataset(cfg)
    per_rank_batch = tc.batch_size // info.world_size
    accumulate = accumulation_steps(per_rank_batch)
    loader = build_dataloader(dataset, batch_size=per_rank_batch // accumulate, shuffle=True,
                              num_workers=objective.num_workers(cfg), seed=cfg.seed, drop_last=True,
                              distributed=info.world_size > 1)
    # An iteration is one optimizer step; the micro-batches left over at an epoch's end are dropped,
    # as drop_last drops a partial batch.
    iters_per_epoch = len(loader) // accumulate
    if len(dataset) == 0:
        raise DataError(f"{objective.describe_data(cfg)}: the dataset has no training instance "
                        f"({objective.empty_data_reason}); nothing to train on")
    if iters_per_epoch == 0:
        raise DataError(f"{objective.describe_data(cfg)}: {len(dataset)} training instances give no "
                        f"full batch of {per_rank_batch} per process; lower train.batch_size")
    optimizer = objective.build_optimizer(modules.model, cfg)
    scheduler = objective.build_scheduler(optimizer, iters_per_epoch, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    return Setup(info, device, amp_dtype, modules, modules.model, loader, iters_per_epoch,
                 optimizer, scheduler, scaler, tc.epochs, accumulate)


class Trainer:
    """One segment of a run: set up, resume, train until done or stopped, save, export.

    `train()` is the entry point; the class exists so that each part is small and the objective is
    the only thing that varies between kinds of training.
    """

    def __init__(self, cfg: RunConfig, work_dir: str | os.PathLike, out_checkpoint: str | os.PathLike,
                 objective: Objective, progress: bool = True, t_start: float | None = None) -> None:
        self.t_start = time.time() if t_start is None else t_start
        if cfg.unavailable:
            raise ConfigError(f"run {cfg.run}: unavailable: {cfg.unavailable}")
        self.cfg, self.objective, self.progress = cfg, objective, progress
        self.work_dir, self.out_checkpoint = Path(work_dir), Path(out_checkpoint)
        info = D.init_from_env()
        self.main = info.is_main
        # Nothing is created under work/ until the first log line or state is written, so bad input
        # (in the configuration, or in the data the first batches read) leaves no directory behind.
        self.s = setup(cfg, objective, info)
        self.state_path = self.work_dir / STATE_FILE
        self.log = TrainLog(self.work_dir / LOG_FILE, enabled=self.main)
        self.chash = state_hash(cfg)
        self.iteration = 0
        self.saved_at = -1  # iteration of the state on disk (no double save at one iteration)
        self.saved_rng: dict | None = None  # restored once the resumed epoch's batches are replayed
        self.time_before = 0.0  # training time of the earlier segments of this run
        self.interval = LogInterval(self.s.device)
        self.final_loss = math.nan
        self.interrupted = False
        self.resumed_from = 0

    # ------------------------------------------------------------------------------------ resume
    def resume(self, enabled: bool = True) -> None:
        """Continue from `last.pth` when present and `enabled`; else start over (log reset).

        Then seed the per-rank RNG and wrap the model in DDP: call it once, before `run`.
        """
        if self.main:  # leftovers of writes killed half-way (the files themselves are intact)
            for path in (self.state_path, self.log.path, self.out_checkpoint):
                remove_stale_temps(path)
        if enabled and self.state_path.exists():
            s = self.s
            # CPU map: RNG states must stay CPU tensors; weights and moments are copied to the device.
            state = load_state(self.state_path, model=s.modules.model, optimizer=s.optimizer,
                               scheduler=s.scheduler, restore_rng=False, map_location="cpu",
                               scaler=s.scaler)
            extra = state["extra"]
            if (extra.get("resume_hash") != self.chash or extra.get("iters_per_epoch") != s.iters_per_epoch
                    or extra.get("objective", HeatmapObjective.name) != self.objective.name):
                raise CheckpointError(
                    f"{self.state_path}: training state of a different configuration (config hash, "
                    f"objective or iterations per epoch differ); "
                    f"{RESUME_HINT.format(work_dir=self.work_dir)}")
            self.iteration = self.saved_at = state["iteration"]
            self.saved_rng = state["rng"]
            self.time_before = float(extra.get("train_time_s", 0.0))
            self.interval.load(extra)
            self.log.truncate_after(self.iteration)
        else:
            self.log.reset()
        self.resumed_from = self.iteration
        # Augmentation is keyed by (seed, epoch, index); dropout / drop-path differ per rank.
        torch.manual_seed(self.cfg.seed + 1000 * self.s.info.rank + 1)
        if self.s.info.world_size > 1:
            device = self.s.device
            self.s.net = DistributedDataParallel(
                self.s.modules.model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.objective.find_unused_parameters)

    # ------------------------------------------------------------------------------------ save
    def save(self) -> None:
        """Write `last.pth` (rank 0) at the current iteration; a collective under DDP."""
        if self.saved_at == self.iteration:
            return
        s = self.s
        if self.main:
            save_state(self.state_path, model=s.modules.model, optimizer=s.optimizer,
                       scheduler=s.scheduler, epoch=self.iteration // s.iters_per_epoch,
                       iteration=self.iteration, scaler=s.scaler,
                       # config_hash: the run's identity, as in config.json and metrics.json;
                       # resume_hash: what a state must match to be resumed (see state_hash)
                       extra={"config_hash": self.cfg.hash, "resume_hash": self.chash,
                              "iters_per_epoch": s.iters_per_epoch,
                              "seed": self.cfg.seed, "objective": self.objective.name,
                              "train_time_s": self.train_time_s(),
                              # the open log interval, so a resumed run logs the same means
                              **self.interval.state()})
        self.saved_at = self.iteration
        D.barrier()

    def train_time_s(self) -> float:
        return self.time_before + time.time() - self.t_start

    # ------------------------------------------------------------------------------------ loop
    def models(self) -> Models:
        s = self.s
        if s.amp_dtype is None:
            autocast: Callable[[], AbstractContextManager] = nullcontext
        else:
            def autocast() -> AbstractContextManager:
                return torch.autocast(device_type=s.device.type, dtype=s.amp_dtype)
        return Models(net=s.net, model=s.modules.model, frozen=s.modules.frozen, device=s.device,
                      autocast=autocast)

    def step(self, batches: list, models: Models) -> None:
        """One optimizer step on `batches` (the micro-batches of one step: one unless gradients are
        accumulated); their mean loss goes into the open log interval."""
        s, tc = self.s, self.cfg.train
        s.optimizer.zero_grad(set_to_none=True)
        if len(batches) == 1:
            loss, scalars = self.objective.loss(batches[0], models)
            s.scaler.scale(loss).backward()
        else:
            loss, scalars = self._accumulate(batches, models)
        if tc.grad_clip is not None:
            s.scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_(s.modules.model.parameters(), tc.grad_clip)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.scheduler.step()
        self.iteration += 1
        self.interval.add(loss, scalars)

    def _accumulate(self, batches: list, models: Models) -> tuple[torch.Tensor, dict]:
        """Backward of each micro-batch's loss / n (= the gradient of the mean over the step's samples
        for the objectives' mean losses); DDP synchronises only on the last one."""
        s, n = self.s, len(batches)
        total, sums = torch.zeros((), device=s.device), {}
        for i, batch in enumerate(batches):
            wrapped = isinstance(s.net, DistributedDataParallel) and i < n - 1
            with s.net.no_sync() if wrapped else nullcontext():
                loss, scalars = self.objective.loss(batch, models)
                s.scaler.scale(loss / n).backward()
            total = total + loss.detach() / n
            for name, value in scalars.items():
                sums[name] = sums.get(name, 0.0) + value.detach() / n
        return total, sums

    def maybe_log(self, epoch: int) -> None:
        """Close the log interval every `log_every_iters` iterations (and at the very end)."""
        tc = self.cfg.train
        if not (self.iteration % tc.log_every_iters == 0 or self.iteration == self.s.total_iters):
            return
        count = self.interval.count
        means = self.interval.means()
        mean_loss = means.pop("loss")
        if not math.isfinite(mean_loss):  # checked here, not per step: no GPU sync per step
            raise FloatingPointError(f"run {self.cfg.run}: training loss became {mean_loss} "
                                     f"by iteration {self.iteration}")
        lr = max(g["lr"] for g in self.s.optimizer.param_groups)
        now = time.time()
        self.log.write({"iter": self.iteration, "epoch": epoch, "loss": mean_loss, **means, "lr": lr,
                        "time": (now - self.t_log) / count})
        self.bar.set_postfix(loss=f"{mean_loss:.3g}", lr=f"{lr:.2e}")
        self.final_loss, self.t_log = mean_loss, now
        self.interval.reset()

    def validate(self, epoch: int) -> None:
        """Score the model on the val split after `epoch` (rank 0; the others wait) and log it.

        Runs before the epoch's save: a job killed during validation resumes from an earlier state,
        replays the epoch and validates again, so every due validation ends up in the log. The last
        epoch is not validated here: `stages.evaluate` scores the final weights."""
        every = self.cfg.train.val_every_epochs
        if every is None or (epoch + 1) % every or epoch + 1 == self.cfg.train.epochs:
            return
        if self.main:
            t0 = time.time()
            # Validation must not shift the training's random streams (its data loader draws a seed
            # from the global RNG): the weights are those of a run without validation.
            rng = capture_rng_state()
            try:
                scores = self.objective.validate(self.s.modules.model, self.cfg, self.work_dir / "val")
            finally:
                restore_rng_state(rng)
            if scores is not None:
                self.log.write({"iter": self.iteration, "epoch": epoch,
                                **{f"val_{k}": v for k, v in scores.items()},
                                "val_time_s": round(time.time() - t0, 3)})
            self.s.modules.model.train()
        D.barrier()

    def train_epoch(self, epoch: int, stop: Callable[[], bool]) -> bool:
        """Train (the rest of) `epoch`; True when `stop()` fired after some iteration."""
        s, every = self.s, self.cfg.train.checkpoint_every_iters
        s.loader.sampler.set_epoch(epoch)
        batches = iter(s.loader)
        done = self.iteration - epoch * s.iters_per_epoch
        for _ in range(done * s.accumulate):  # mid-epoch resume: replay
            next(batches)
        if self.saved_rng is not None:
            restore_rng_state(self.saved_rng)
            self.saved_rng = None
        models = self.models()
        for _ in range(s.iters_per_epoch - done):
            self.step([next(batches) for _ in range(s.accumulate)], models)
            self.bar.update(1)
            self.maybe_log(epoch)
            if every is not None and self.iteration % every == 0:
                self.save()
            if stop():
                return True
        return False

    def run(self, stop_after_iters: int | None = None,
            should_stop: Callable[[], bool] | None = None) -> None:
        """Epochs from the resumed iteration to the end, or until stopped (then `interrupted`)."""
        s, tc = self.s, self.cfg.train

        def stop() -> bool:
            return ((stop_after_iters is not None and self.iteration >= stop_after_iters)
                    or _stop_requested(should_stop, s.device))

        self.bar = tqdm(total=s.total_iters, initial=self.iteration, desc=f"train {self.cfg.run}",
                        unit="it", disable=not (self.progress and self.main), dynamic_ncols=True)
        self.t_log = time.time()
        s.modules.model.train()
        try:
            for epoch in range(self.iteration // s.iters_per_epoch, tc.epochs):
                if stop_after_iters is not None and self.iteration >= stop_after_iters:
                    self.interrupted = True
                    break
                if self.train_epoch(epoch, stop) and self.iteration < s.total_iters:
                    self.interrupted = True
                    self.save()
                    break
                self.validate(epoch)
                if (epoch + 1) % tc.checkpoint_every_epochs == 0 or epoch + 1 == tc.epochs:
                    self.save()
        finally:
            self.bar.close()

    # ------------------------------------------------------------------------------------ export
    def summary(self) -> dict[str, Any]:
        s, tc = self.s, self.cfg.train
        return {
            "run": self.cfg.run,
            "iterations": self.iteration,
            "total_iters": s.total_iters,
            "epochs": tc.epochs,
            "iters_per_epoch": s.iters_per_epoch,
            "train_samples": len(s.loader.dataset),
            "final_loss": self.final_loss,
            "lr": tc.lr,
            "world_size": s.info.world_size,
            "accumulate": s.accumulate,
            "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[s.amp_dtype],
            "interrupted": self.interrupted,
            "resumed_from": self.resumed_from,
            "wall_time_s": time.time() - self.t_start,
            "train_time_s": self.train_time_s(),  # all segments of this run
            "checkpoint": None,
        }

    def export(self, summary: dict[str, Any]) -> None:
        """The objective's final file at `out_checkpoint` (rank 0), once training has finished."""
        if self.main:
            self.objective.export(self.s.modules.model, self.out_checkpoint, self.cfg, summary)
        summary["checkpoint"] = str(self.out_checkpoint)
        D.barrier()


def objective_for(cfg: RunConfig) -> Objective:
    """What a run trains, from its configuration: MAE pre-training (a `pretraining` section), knowledge
    token training or a distilled student (a `distill` section), multi-dataset training (extra datasets: one decoder each) or heatmap finetuning."""
    if cfg.pretraining is not None:
        from vitpose.engine.mae import MAEObjective

        return MAEObjective()
    if cfg.distill is not None:
        from vitpose.engine.distill import DistillObjective, TokenObjective

        return TokenObjective() if cfg.distill.job == "token" else DistillObjective()
    if cfg.extra_data:
        from vitpose.engine.multi_dataset import MultiDatasetObjective

        return MultiDatasetObjective()
    return HeatmapObjective()


def train(
    cfg: RunConfig,
    work_dir: str | os.PathLike,
    out_checkpoint: str | os.PathLike,
    resume: bool = True,
    stop_after_iters: int | None = None,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
    objective: Objective | None = None,
    curve: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train with `objective` (default: `objective_for(cfg)`: heatmap finetuning of `cfg.model` on
    `cfg.data`, multi-dataset training (engine/multi_dataset.py) when `cfg.extra_data` is set, MAE
    pre-training (engine/mae.py) when `cfg.pretraining` is) under `cfg.train`; export the weights to
    `out_checkpoint`.

    resume: continue from `work_dir/last.pth` when present (else start over).
    stop_after_iters: save the state and return after this many iterations in total (simulates a
        kill in tests); should_stop: polled every iteration (e.g. a SLURM pre-emption signal), same
        effect. Both return a summary with `interrupted` True and export nothing.
    curve: where rank 0 writes the training curve (CSV of `train_log.jsonl`) once training has finished.
    Returns a summary dict (iterations, epochs, iters_per_epoch, final_loss, lr,
    world_size, precision, interrupted, resumed_from, wall_time_s, checkpoint).
    """
    if objective is None:
        objective = objective_for(cfg)
    trainer = Trainer(cfg, work_dir, out_checkpoint, objective, progress, t_start=time.time())
    trainer.resume(resume)
    trainer.run(stop_after_iters, should_stop)
    summary = trainer.summary()
    if not trainer.interrupted:
        trainer.export(summary)
        if curve is not None and trainer.main:
            write_curve(Path(work_dir) / LOG_FILE, curve)
    return summary
