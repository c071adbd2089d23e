"""What a training run optimises: the part of the training loop (engine/trainer.py) that varies.

An `Objective` builds the module to train (plus any frozen auxiliary models, e.g. a distillation
teacher), the training dataset, the loss of a batch, and the exported file. Everything else — device,
DDP, precision, optimizer and schedule, exact resume, N-iteration saves, the log, the progress bar,
requeue through `should_stop` — is the loop's, shared by every objective:

    train(cfg, work_dir, out, objective=MyObjective())

`HeatmapObjective` (the default) is the paper's top-down finetuning: heatmap MSE against UDP targets,
exported in the released ViTPose format. MAE pre-training, multi-dataset training, knowledge-token
training or distillation are other objectives (another dataset, loss and export), not other loops.

Contract, so that resume stays bit-exact: `build` and `build_dataset` are deterministic given `cfg`
and the torch seed the loop sets before calling them (frozen models are rebuilt, not saved: load
them from files); `loss` may use the global RNG (dropout, masking) — the loop saves and restores it;
the dataset's augmentation must be keyed by (seed, epoch, index) like `TopDownCocoDataset`, so that
a mid-epoch resume can replay the epoch's batches.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from vitpose.config import RunConfig, resolve_path
from vitpose.engine.loss import keypoint_mse_loss
from vitpose.engine.optim import build_optimizer
from vitpose.engine.schedule import build_cosine_scheduler, build_scheduler
from vitpose.utils.errors import CheckpointError, ConfigError


@dataclass
class TrainModules:
    """What `Objective.build` returns.

    model: the module trained — optimised, saved in `last.pth`, exported, DDP-wrapped when distributed.
    frozen: auxiliary modules (a teacher, a frozen tokenizer): moved to the device, put in eval mode
        with gradients off, never saved (rebuild them from their files on resume).
    """

    model: nn.Module
    frozen: dict[str, nn.Module] = field(default_factory=dict)


@dataclass
class Models:
    """What `Objective.loss` receives: the modules of the run, on the training device.

    net: the trained model as the forward pass must call it (the DDP wrapper when distributed, so
        that gradients are synchronised); model: the same, unwrapped (for attribute access).
    autocast: `with models.autocast():` runs the forward pass in the run's precision (bf16 / fp16
        autocast, or nothing in fp32).
    """

    net: nn.Module
    model: nn.Module
    frozen: dict[str, nn.Module]
    device: torch.device
    autocast: Callable[[], AbstractContextManager]

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)


class Objective:
    """Base of the training objectives; subclasses define `build`, `build_dataset`, `loss`, `export`.

    name: recorded in the training state; a state of another objective is not resumed.
    find_unused_parameters: passed to DDP (True when a batch may leave parameters without gradient,
        e.g. the heads of other datasets in multi-dataset training).
    """

    name: str = "objective"
    find_unused_parameters: bool = False
    # what an empty training set lacks, for the error message
    empty_data_reason: str = "no person annotation with labelled keypoints"

    def build(self, cfg: RunConfig) -> TrainModules:
        raise NotImplementedError

    def build_dataset(self, cfg: RunConfig) -> Dataset:
        """The training samples; items are what `loss` gets, collated (dicts of batched tensors)."""
        raise NotImplementedError

    def describe_data(self, cfg: RunConfig) -> str:
        """The file the training data comes from, for error messages."""
        return str(cfg.data.resolve("train_ann"))

    def loss(self, batch: Any, models: Models) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(scalar loss to minimise, {name: scalar tensor} of extra values to log).

        The extra values are averaged over each log interval like the loss and logged under their
        names (not 'iter', 'epoch', 'loss', 'lr' or 'time'); detach them.
        """
        raise NotImplementedError

    def export(self, model: nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
        """Write the final weights to `path` (atomically), in the objective's release format."""
        raise NotImplementedError

    def build_optimizer(self, model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
        """AdamW with layer-wise lr decay over the trainable parameters (paper Table 1)."""
        tc = cfg.train
        return build_optimizer(model, tc.lr, tc.weight_decay, tc.betas, tc.layer_decay)

    def build_scheduler(self, optimizer: torch.optim.Optimizer, iters_per_epoch: int,
                        cfg: RunConfig) -> torch.optim.lr_scheduler.LRScheduler:
        """`train.lr_schedule`, stepped every iteration: "step" (linear warm-up then step decay at the
        milestones) or "cosine" (linear warm-up from 0 over `warmup_epochs`, half-cycle cosine to `min_lr`)."""
        tc = cfg.train
        if tc.lr_schedule == "cosine":
            warmup = (round(tc.warmup_epochs * iters_per_epoch) if tc.warmup_epochs is not None
                      else tc.warmup_iters)
            return build_cosine_scheduler(optimizer, iters_per_epoch, tc.epochs, warmup, tc.min_lr / tc.lr)
        return build_scheduler(optimizer, iters_per_epoch, tc.milestones, tc.gamma,
                               tc.warmup_iters, tc.warmup_ratio)

    def num_workers(self, cfg: RunConfig) -> int:
        """Data loader processes of the training data."""
        return cfg.data.num_workers

    def validate(self, model: nn.Module, cfg: RunConfig, out_dir: Path) -> dict[str, float] | None:
        """Val scores of the model being trained (for the training curve), or None when the objective
        has no val metric (MAE, the knowledge token). Called on rank 0 between epochs
        (`train.val_every_epochs`); scratch files go to `out_dir`."""
        return None


# ---------------------------------------------------------------------------------------- heatmaps
def build_train_dataset(cfg: RunConfig):
    """Ground-truth person crops of the training split, with the released augmentation."""
    from vitpose.data.dataset import TopDownCocoDataset
    from vitpose.data.keypoints import get_meta

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


def build_model_for_training(cfg: RunConfig) -> nn.Module:
    """The configured model, initialised from `cfg.pretrained` when given, with activation
    checkpointing when `train.activation_checkpointing`."""
    from vitpose.models import build_model

    return apply_activation_checkpointing(init_from_pretrained(build_model(cfg.model), cfg), cfg)


def apply_activation_checkpointing(model: nn.Module, cfg: RunConfig) -> nn.Module:
    """Switch the backbone's activation checkpointing on when `train.activation_checkpointing`
    (backbones with timm's `set_grad_checkpointing`: ViT, ResNet); returns `model`."""
    if cfg.train.activation_checkpointing:
        backbone = getattr(model, "backbone", None)
        if not hasattr(backbone, "set_grad_checkpointing"):
            raise ConfigError(f"train.activation_checkpointing: the {cfg.model.arch} backbone does not "
                              f"support activation checkpointing; set it to false")
        backbone.set_grad_checkpointing(True)
    return model


def init_from_pretrained(model: nn.Module, cfg: RunConfig) -> nn.Module:
    """Load `cfg.pretrained` into `model` when given (format detected by the file); returns `model`."""
    from vitpose.models.checkpoint import load_pretrained

    if cfg.pretrained:
        path = resolve_path(cfg.pretrained)
        if not path.is_file():
            raise CheckpointError(f"{path}: pretrained checkpoint not found (config key 'pretrained')")
        load_pretrained(model, path)
    return model


def export_checkpoint(model: nn.Module, path: str | os.PathLike, cfg: RunConfig, summary: dict,
                      extra_meta: dict | None = None) -> None:
    """Final weights in the released ViTPose format (`state_dict` + `meta`), written atomically."""
    from vitpose.models.checkpoint import save_vitpose_checkpoint

    meta = {"run": cfg.run, "scale": cfg.scale, "config_hash": cfg.hash,
            "iterations": summary["iterations"], "epochs": cfg.train.epochs,
            "train_time_s": summary["train_time_s"], **(extra_meta or {})}
    save_vitpose_checkpoint(model, path, meta=meta)


def heatmap_batch(batch: dict, models: Models) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A top-down batch on the training device: images (B, 3, H, W), target (B, K, h, w), weight (B, K)."""
    return (models.to_device(batch["img"]), models.to_device(batch["target"]),
            models.to_device(batch["target_weight"]))


class HeatmapObjective(Objective):
    """Top-down keypoint heatmap regression (paper §3): masked MSE against the UDP Gaussian targets."""

    name = "heatmap"

    def build(self, cfg: RunConfig) -> TrainModules:
        return TrainModules(build_model_for_training(cfg))

    def build_dataset(self, cfg: RunConfig):
        return build_train_dataset(cfg)

    def loss(self, batch: dict, models: Models) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, target, weight = heatmap_batch(batch, models)
        with models.autocast():
            heatmaps = models.net(images)                      # (B, K, h, w)
        # outside autocast: the loss is computed in float32 whatever the forward's precision
        return keypoint_mse_loss(heatmaps, target, weight), {}

    def export(self, model: nn.Module, path: Path, cfg: RunConfig, summary: dict) -> None:
        export_checkpoint(model, path, cfg, summary)

    def validate(self, model: nn.Module, cfg: RunConfig, out_dir: Path) -> dict[str, float] | None:
        """COCO AP and AR on the run's val split with the evaluation protocol of `stages.evaluate`
        (the primary dataset's decoder for a multi-dataset model; a student with its token)."""
        from vitpose.engine.inference import evaluate

        metrics = evaluate(cfg, None, out_dir, progress=False, model=model)
        return {"AP": metrics["AP"], "AR": metrics["AR"]}
