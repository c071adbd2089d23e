"""Heatmap regression loss (REFERENCE §2)."""
from __future__ import annotations

import torch


def keypoint_mse_loss(
    heatmaps: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor
) -> torch.Tensor:
    """MSE between predicted and target heatmaps, each joint masked by its target weight.

    heatmaps, target: (B, K, h, w); target_weight: (B, K) or (B, K, 1), 0 for joints without a
    target. Mean over batch, joints and pixels (masked joints count in the denominator, as in the
    released JointsMSELoss), computed in float32 whatever the autocast dtype.
    """
    if heatmaps.shape != target.shape:
        raise ValueError(f"heatmaps {tuple(heatmaps.shape)} and target {tuple(target.shape)} differ")
    weight = target_weight.reshape(*target.shape[:2], 1, 1).float()
    diff = (heatmaps.float() - target.float()) * weight
    return diff.pow(2).mean()
