"""Learning-rate schedules: step decay for finetuning (REFERENCE §5), warm-up + cosine for MAE.

Finetuning: linear warm-up, then step decay at milestone epochs.

The factor multiplies each param group's initial lr (which already holds its layer-decay
`lr_scale`), stepping once per iteration:

    factor(it) = gamma^(#milestone iterations ≤ it) · warmup(it)
    warmup(it) = 1 − (1 − it / warmup_iters) · (1 − warmup_ratio)   for it < warmup_iters, else 1

as in mmcv's step policy with linear warm-up (warm-up scales the already-decayed lr). Milestones are
given in epochs and may be fractional (a shortened schedule keeps the paper's 170/210 and 200/210);
epoch m becomes iteration round(m · iters_per_epoch), an epoch boundary for whole m.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

# Paper: 210 epochs with ×0.1 at epochs 170 and 200; shorter runs keep the same fractions.
PAPER_EPOCHS = 210
PAPER_MILESTONES = (170, 200)


def default_milestones(epochs: int) -> list[float]:
    """The paper's milestones at the same fractions of an `epochs`-long run (170/210, 200/210)."""
    return [m * epochs / PAPER_EPOCHS for m in PAPER_MILESTONES]


class WarmupStepFactor:
    """Per-iteration lr factor; a callable object so LambdaLR can save and restore it."""

    def __init__(
        self,
        iters_per_epoch: int,
        milestones: Sequence[float],
        gamma: float = 0.1,
        warmup_iters: int = 500,
        warmup_ratio: float = 0.001,
    ) -> None:
        if iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch: expected ≥ 1, got {iters_per_epoch}")
        self.iters_per_epoch = int(iters_per_epoch)
        self.milestone_iters = sorted(round(m * self.iters_per_epoch) for m in milestones)
        self.gamma = float(gamma)
        self.warmup_iters = int(warmup_iters)
        self.warmup_ratio = float(warmup_ratio)

    def __call__(self, iteration: int) -> float:
        factor = self.gamma ** sum(iteration >= m for m in self.milestone_iters)
        if iteration < self.warmup_iters:
            factor *= 1.0 - (1.0 - iteration / self.warmup_iters) * (1.0 - self.warmup_ratio)
        return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    iters_per_epoch: int,
    milestones: Sequence[float],
    gamma: float = 0.1,
    warmup_iters: int = 500,
    warmup_ratio: float = 0.001,
) -> LambdaLR:
    """A LambdaLR to be stepped after every optimizer step; iteration `it` trains at factor(it)."""
    factor = WarmupStepFactor(iters_per_epoch, milestones, gamma, warmup_iters, warmup_ratio)
    return LambdaLR(optimizer, lr_lambda=factor)


class WarmupCosineFactor:
    """MAE pre-training's per-iteration lr factor (He et al. 2022): linear warm-up from 0 over
    `warmup_iters`, then a half-cycle cosine from 1 down to `min_ratio` (= min_lr / lr) at `total_iters`:

        factor(it) = it / warmup_iters                                             for it < warmup_iters
        factor(it) = min_ratio + (1 − min_ratio) · ½ (1 + cos(π (it − w) / (T − w)))  otherwise

    MAE's own code updates the lr per data iteration with the same formula (fractional epochs); here
    `it` counts optimizer steps, which is the same thing without gradient accumulation.
    """

    def __init__(self, total_iters: int, warmup_iters: int, min_ratio: float = 0.0) -> None:
        if total_iters < 1:
            raise ValueError(f"total_iters: expected ≥ 1, got {total_iters}")
        self.total_iters = int(total_iters)
        self.warmup_iters = max(0, min(int(warmup_iters), self.total_iters - 1))
        self.min_ratio = float(min_ratio)

    def __call__(self, iteration: int) -> float:
        if iteration < self.warmup_iters:
            return iteration / self.warmup_iters
        span = self.total_iters - self.warmup_iters
        progress = min(1.0, (iteration - self.warmup_iters) / span)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    iters_per_epoch: int,
    epochs: int,
    warmup_iters: int,
    min_ratio: float = 0.0,
) -> LambdaLR:
    """A LambdaLR (stepped after every optimizer step) following `WarmupCosineFactor`."""
    factor = WarmupCosineFactor(iters_per_epoch * epochs, warmup_iters, min_ratio)
    return LambdaLR(optimizer, lr_lambda=factor)
