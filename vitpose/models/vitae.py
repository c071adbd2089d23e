"""The ViTAE backbone of ViTPose-G (paper §4.3, Table 10; ViTAE-G of ViTAEv2, Zhang et al. 2022).

A plain, non-hierarchical ViTAE: ViTPose's ViT (vit.py: patch embedding, position embedding, pre-norm
blocks, last_norm, the Table 5 attention variants) whose every block adds ViTAE's parallel
convolution module (PCM) beside the attention branch, on the block's un-normalised input:

    x = x + DropPath(Attn(LN(x))) + DropPath(PCM(x))
    x = x + DropPath(MLP(LN(x)))

PCM, on the (Hp, Wp) token grid: 3x3 conv C -> hidden (grouped) -> BatchNorm -> SiLU -> 3x3 conv
hidden -> C (grouped), hidden = mlp_ratio * C (the FFN's width). Module names follow the rest of the
backbone (`backbone.blocks.{i}.pcm.{0,1,3}`); ViTAE's public code names the module `PCM`, which the
checkpoint loader maps to `pcm`. The sizes of ViTPose-G's backbone are not published: see
vitpose/models/README.md for the ones chosen (1408 wide, 40 deep, 16 heads, groups 64) and why.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from vitpose.models.vit import Block, ViTPoseBackbone

PCM_GROUPS = 64  # the public plain-ViTAE code's default group count


def pcm_groups(dim: int) -> int:
    """Groups of the PCM convolutions for width `dim`: gcd(dim, 64), i.e. the public code's 64 where it
    divides the width (ViTPose-G: 1408 = 64 x 22), else the largest power of two that does (tiny models)."""
    return math.gcd(dim, PCM_GROUPS)


def parallel_convolution(dim: int, hidden: int, groups: int) -> nn.Sequential:
    """ViTAE's PCM: (B, C, Hp, Wp) -> (B, C, Hp, Wp). Indices 0, 1, 3 are the public code's keys.

    Parameters: 2 * 9 * dim * hidden / groups (convolution weights) + hidden + dim (biases)
    + 2 * hidden (BatchNorm affine).
    """
    return nn.Sequential(
        nn.Conv2d(dim, hidden, kernel_size=3, padding=1, groups=groups),
        nn.BatchNorm2d(hidden),
        nn.SiLU(),
        nn.Conv2d(hidden, dim, kernel_size=3, padding=1, groups=groups),
    )


class ViTAEBlock(Block):
    """ViTPose's block (same attention, MLP and norms) plus the parallel convolution branch."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        window_size: tuple[int, int] | None = None,
        shift: bool = False,
        pool: bool = False,
        groups: int = PCM_GROUPS,
    ) -> None:
        super().__init__(dim, num_heads, mlp_ratio=mlp_ratio, drop_path=drop_path, window_size=window_size,
                         shift=shift, pool=pool)
        self.pcm = parallel_convolution(dim, int(dim * mlp_ratio), groups)

    def conv_branch(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x: (B, T + Hp*Wp, C) -> (B, T + Hp*Wp, C): the PCM of the last Hp*Wp (grid) tokens.

        T prefix tokens (the knowledge token) have no place on the grid: their conv term is zero.
        """
        b, n, c = x.shape
        cells = grid[0] * grid[1]
        if n < cells:
            raise ValueError(f"a ViTAE block needs the whole {grid[0]}x{grid[1]} token grid, got {n} tokens "
                             f"(masked inputs, as in MAE pre-training, are not supported)")
        fmap = x[:, n - cells:].transpose(1, 2).reshape(b, c, *grid)     # (B, C, Hp, Wp)
        out = self.pcm(fmap).flatten(2).transpose(1, 2)                 # (B, Hp*Wp, C)
        return F.pad(out, (0, 0, n - cells, 0)) if n > cells else out

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x: (B, N, C) -> (B, N, C)."""
        conv = self.drop_path(self.conv_branch(x, grid))  # from the input, beside the attention
        x = x + self.drop_path(self.attn(self.norm1(x), grid)) + conv
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViTAEBackbone(ViTPoseBackbone):
    """ViTPoseBackbone with ViTAEBlocks: same arguments, module names, forward and freezing (the PCM
    belongs to neither the "mhsa" nor the "ffn" part, so it trains in both Table 6 modes)."""

    def __init__(
        self,
        img_size: tuple[int, int] = (256, 192),
        embed_dim: int = 1408,
        depth: int = 40,
        num_heads: int = 16,
        ratio: int = 1,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        attention: str = "full",
        window_size: tuple[int, int] = (8, 8),
        shift: bool = False,
        pool: bool = False,
        freeze: str | None = None,
        groups: int | None = None,
    ) -> None:
        groups = pcm_groups(embed_dim) if groups is None else groups
        super().__init__(img_size=img_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads, ratio=ratio,
                         mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate, attention=attention,
                         window_size=window_size, shift=shift, pool=pool, freeze=freeze,
                         block=functools.partial(ViTAEBlock, groups=groups))

