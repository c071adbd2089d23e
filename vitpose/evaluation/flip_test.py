"""Flip test: average the heatmaps of a crop and of its mirror image (REFERENCE §4)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from vitpose.data.codec import flip_heatmaps


def flip_test(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    flip_indices: Sequence[int],
) -> Tensor:
    """``(f(x) + flip_back(f(flip(x)))) / 2``.

    Args:
        model: maps images (B, 3, H, W) to heatmaps (B, K, h, w).
        images: (B, 3, H, W) normalised crops.
        flip_indices: (K,) left/right joint permutation (an involution).

    Returns:
        (B, K, h, w) averaged heatmaps. Under UDP no one-pixel shift is applied to the flipped maps.
        Gradients are not disabled here; callers wrap evaluation in ``torch.no_grad()``.

    Two forward passes rather than one on a doubled batch: peak memory stays that of one batch.
    """
    heatmaps = model(images)
    flipped = flip_heatmaps(model(torch.flip(images, dims=(-1,))), flip_indices)
    return (heatmaps + flipped) / 2
