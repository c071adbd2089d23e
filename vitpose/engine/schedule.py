"""Learning-rate schedule: linear warm-up, then step decay at milestone epochs (REFERENCE §5).

The factor multiplies each param group's initial lr (which already holds its layer-decay
`lr_scale`), stepping once per iteration:

    factor(it) = gamma^(#milestone iterations ≤ it) · warmup(it)
    warmup(it) = 1 − (1 − it / warmup_iters) · (1 − warmup_ratio)   for it < warmup_iters, else 1

as in mmcv's step policy with linear warm-up (warm-up scales the already-decayed lr). Milestones are
given in epochs and may be fractional (a shortened schedule keeps the paper's 170/210 and 200/210);
epoch m becomes iteration round(m · iters_per_epoch), an epoch boundary for whole m.
"""
from __future__ import annotations

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
