"""The plain ViT backbone of ViTPose (paper §3.1, REFERENCE §1), with the released module names.

Patch embedding -> + position embedding -> pre-norm blocks -> last_norm -> feature map (B, C, Hp, Wp).
Numerics follow the released implementation: patch conv padding 2 (ratio 1), a (1, N+1, C) position
embedding whose class-token slot is folded into every patch token, LayerNorm eps 1e-6, exact GELU.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn
from torch.utils.checkpoint import checkpoint

from vitpose.models.attention import Attention

PATCH_SIZE = 16
LN_EPS = 1e-6


class PatchEmbed(nn.Module):
    """Conv2d(3, C, kernel 16, stride 16/ratio, padding 4 + 2 * (ratio // 2 - 1)) (released rule).

    ratio 1: stride 16, padding 2 -> 256x192 gives 16x12 tokens; ratio 2: stride 8, padding 4 ->
    overlapping patches, 32x24 tokens (the paper's 1/8 features; "retain the size of each patch").
    """

    def __init__(self, img_size: tuple[int, int], embed_dim: int, ratio: int = 1, in_chans: int = 3) -> None:
        super().__init__()
        self.img_size = tuple(img_size)
        stride = PATCH_SIZE // ratio
        padding = 4 + 2 * (ratio // 2 - 1)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=PATCH_SIZE, stride=stride, padding=padding)
        self.grid_size = tuple(
            (s + 2 * padding - PATCH_SIZE) // stride + 1 for s in self.img_size
        )  # (Hp, Wp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> tokens (B, Hp * Wp, C)."""
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"input of size {x.shape[-2]}x{x.shape[-1]} does not match the model's input_size "
                f"{self.img_size[0]}x{self.img_size[1]} (the position embedding is fixed at construction)"
            )
        return self.proj(x).flatten(2).transpose(1, 2)


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(Attn(LN(x))); x + DropPath(MLP(LN(x)))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        window_size: tuple[int, int] | None = None,
        shift: bool = False,
        pool: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias=True, window_size=window_size, shift=shift, pool=pool)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x: (B, N, C) -> (B, N, C)."""
        x = x + self.drop_path(self.attn(self.norm1(x), grid))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@dataclass(frozen=True)
class BlockAttention:
    """How one block attends: window None = full attention."""

    window_size: tuple[int, int] | None
    shift: bool = False
    pool: bool = False


def vitdet_interval(depth: int) -> int:
    """ViTDet puts full attention in every (depth // 4)-th block: 2, 5, 8, 11 of 12.

    Depths below 4 would give an interval of 0; they get 1 (every block full), since a model that
    small has no room for the interleave.
    """
    return max(1, depth // 4)


def block_attention_plan(
    depth: int,
    attention: str = "full",
    window_size: tuple[int, int] = (8, 8),
    shift: bool = False,
    pool: bool = False,
) -> list[BlockAttention]:
    """Per-block attention for Table 5.

    full: every block full. window: every block windowed; with `shift`, odd blocks (1, 3, ...) are
    shifted (Swin alternates regular and shifted windows); `pool` applies to every windowed block.
    vitdet: block i full when (i + 1) % (depth // 4) == 0, windowed (with shift/pool) elsewhere.
    """
    plan = []
    for i in range(depth):
        full = attention == "full" or (attention == "vitdet" and (i + 1) % vitdet_interval(depth) == 0)
        if full:
            plan.append(BlockAttention(None))
        else:
            plan.append(BlockAttention(tuple(window_size), shift=shift and i % 2 == 1, pool=pool))
    return plan


class ViTPoseBackbone(nn.Module):
    """Plain ViT for pose; module names equal the released checkpoint's `backbone.*` keys."""

    def __init__(
        self,
        img_size: tuple[int, int] = (256, 192),
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        ratio: int = 1,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        attention: str = "full",
        window_size: tuple[int, int] = (8, 8),
        shift: bool = False,
        pool: bool = False,
        freeze: str | None = None,
        block: Callable[..., Block] | None = None,
    ) -> None:
        """block: builds block i as `block(dim, num_heads, mlp_ratio, drop_path, window_size, shift, pool)`
        (default `Block`; ViTAE's blocks add a convolution branch, models/vitae.py)."""
        super().__init__()
        block = block or Block
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, embed_dim, ratio=ratio)
        self.grid_size = self.patch_embed.grid_size
        num_patches = self.grid_size[0] * self.grid_size[1]
        # (1, N+1, C): the released layout keeps a class-token slot although there is no class token.
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
        plan = block_attention_plan(depth, attention, window_size, shift, pool)
        self.blocks = nn.ModuleList(
            block(embed_dim, num_heads, mlp_ratio, rates[i], plan[i].window_size, plan[i].shift, plan[i].pool)
            for i in range(depth)
        )
        self.last_norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self._init_weights()
        self.frozen: list[nn.Module] = []
        if freeze is not None:
            self.freeze(freeze)
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing (timm's name for it): in training, each block's activations are
        recomputed in the backward pass instead of kept. Same results (the drop-path RNG state is
        replayed), most activation memory saved, about one more forward pass of compute."""
        self.grad_checkpointing = bool(enable)

    def _init_weights(self) -> None:
        # Released init: trunc-normal(0.02) for Linear weights and pos_embed, zero biases, LayerNorm
        # (1, 0); the patch conv keeps PyTorch's default init.
        trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ partial finetuning (Table 6)
    def freeze(self, part: str) -> None:
        """part "mhsa": every block's attn + norm1; "ffn": every block's mlp + norm2, patch and position
        embedding (released switches). Frozen modules get requires_grad False and stay in eval mode."""
        if part == "mhsa":
            modules = [m for b in self.blocks for m in (b.norm1, b.attn)]
            params = []
        elif part == "ffn":
            modules = [m for b in self.blocks for m in (b.norm2, b.mlp)] + [self.patch_embed]
            params = [self.pos_embed]
        else:
            raise ValueError(f"freeze: expected 'mhsa' or 'ffn', got {part!r}")
        for m in modules:
            m.requires_grad_(False)
        for p in params:
            p.requires_grad_(False)
        self.frozen = modules
        self.train(self.training)

    def train(self, mode: bool = True) -> "ViTPoseBackbone":
        super().train(mode)
        for m in getattr(self, "frozen", []):
            m.eval()
        return self

    # ------------------------------------------------------------------ forward
    def forward_tokens(self, x: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, 3, H, W) -> normalised patch tokens (B, N, C), N = Hp * Wp.

        prefix: (1 or B, T, C) tokens put in front of the patch tokens after the position embedding
        (the knowledge token, models/token.py); they attend and are attended to in every block (full
        attention only) and are dropped from the output.
        """
        x = self.patch_embed(x)
        # Fold the class-token slot into every patch token (released forward).
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        extra = 0
        if prefix is not None:
            if any(b.attn.window_size is not None for b in self.blocks):
                raise ValueError("extra tokens need full attention in every block (a window has no place "
                                 "for a token outside the grid)")
            extra = prefix.shape[1]
            x = torch.cat([prefix.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, self.grid_size, use_reentrant=False)
            else:
                x = block(x, self.grid_size)
        return self.last_norm(x[:, extra:])

    def forward(self, x: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, 3, H, W) -> feature map (B, C, Hp, Wp) (`prefix`: see `forward_tokens`)."""
        tokens = self.forward_tokens(x, prefix)
        return tokens.transpose(1, 2).unflatten(2, self.grid_size)
