"""Multi-head self-attention of a ViTPose block: full, window, shift-window and pooling-window (§3.3).

One fused qkv Linear (rows [q; k; v], heads contiguous; the released and timm layout) and an output
`proj`; the attention itself is torch's scaled_dot_product_attention (scale head_dim^-0.5).

Windowed variants (not in the released code; built from the paper's text, Table 5):
- window: non-overlapping windows of `window_size` tokens, ViTDet style, grid padded to a multiple of
  the window with padded keys masked.
- shift: Swin's cyclic shift by half a window (the caller enables it on alternating blocks).
- pool: each window's keys and values are average-pooled to one global token per window; the pooled
  tokens of all windows are appended to every window's keys and values. Pooling k and v equals
  pooling the tokens before the (affine) qkv projection, so it adds no parameters. The pooled tokens
  come from the regular, unshifted partition, also in shifted blocks: they are the global context and
  the same for every window.
Shift and pool add no parameters; they only change which keys each query sees.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitpose.models.windows import (
    effective_window,
    padded_size,
    shift_size,
    valid_token_map,
    window_attention_mask,
    window_merge,
    window_partition,
)


class Attention(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        window_size: tuple[int, int] | None = None,
        shift: bool = False,
        pool: bool = False,
    ) -> None:
        """window_size None = full attention; shift / pool only apply to windowed attention."""
        super().__init__()
        if window_size is None and (shift or pool):
            raise ValueError("shift and pool need a window_size")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window_size = window_size
        self.shift = shift
        self.pool = pool
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        if self.window_size is None:
            return "full"
        return f"window={self.window_size}, shift={self.shift}, pool={self.pool}"

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """x: (B, N, C) tokens of a row-major (Hp, Wp) grid, N = Hp * Wp -> (B, N, C)."""
        b, n, c = x.shape
        qkv = self.qkv(x)  # (B, N, 3C)
        if self.window_size is None:
            out = self._full(qkv)
        else:
            out = self._windowed(qkv.view(b, grid[0], grid[1], 3 * c), grid)
        return self.proj(out)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B', T, C) -> (B', nh, T, hd)."""
        return t.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def _full(self, qkv: torch.Tensor) -> torch.Tensor:
        """qkv: (B, N, 3C) -> (B, N, C)."""
        q, k, v = (self._heads(t) for t in qkv.chunk(3, dim=-1))  # (B, nh, N, hd)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).flatten(2)

    def _windowed(self, qkv: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """qkv: (B, Hp, Wp, 3C) -> (B, Hp * Wp, C)."""
        b, h, w, c3 = qkv.shape
        c = c3 // 3
        window = effective_window(grid, self.window_size)
        padded = padded_size(grid, window)
        shift = shift_size(grid, window) if self.shift else (0, 0)
        # qkv is computed before padding (no FLOPs on padded tokens); padded keys are masked below.
        qkv = F.pad(qkv, (0, 0, 0, padded[1] - w, 0, padded[0] - h))
        pooled = self._pooled_kv(qkv[..., c:], grid, padded, window) if self.pool else None
        if shift != (0, 0):
            qkv = torch.roll(qkv, shifts=(-shift[0], -shift[1]), dims=(1, 2))

        windows = window_partition(qkv, window)  # (B * nW, T, 3C)
        q, k, v = (self._heads(t) for t in windows.chunk(3, dim=-1))  # (B * nW, nh, T, hd)
        mask = window_attention_mask(grid, window, shift, qkv.device)  # (nW, T, T) or None
        num_windows = windows.shape[0] // b
        if pooled is not None:
            pk, pv = pooled  # (B, nh, nW, hd)
            k = torch.cat([k, self._per_window(pk, num_windows)], dim=2)  # (B * nW, nh, T + nW, hd)
            v = torch.cat([v, self._per_window(pv, num_windows)], dim=2)
            if mask is not None:  # every query may attend to every pooled token
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], mask.shape[1], num_windows)], -1)
        if mask is not None:  # (nW, T, Tk) -> (B * nW, 1, T, Tk), windows batch-major as in q
            mask = mask[None].expand(b, -1, -1, -1).reshape(b * num_windows, 1, *mask.shape[1:])
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B * nW, nh, T, hd)

        out = window_merge(out.transpose(1, 2).flatten(2), window, padded)  # (B, Hp', Wp', C)
        if shift != (0, 0):
            out = torch.roll(out, shifts=shift, dims=(1, 2))
        return out[:, :h, :w].reshape(b, h * w, c)

    def _pooled_kv(
        self,
        kv: torch.Tensor,
        grid: tuple[int, int],
        padded: tuple[int, int],
        window: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """kv: (B, Hp', Wp', 2C) padded, unshifted -> pooled k, v: (B, nh, nW, hd), mean of real tokens."""
        b = kv.shape[0]
        weight = valid_token_map(grid, padded, kv.device).float()[None, :, :, None]
        weight = window_partition(weight, window)  # (nW, T, 1)
        windows = window_partition(kv, window).unflatten(0, (b, weight.shape[0]))  # (B, nW, T, 2C)
        # Averaged in fp32: under bf16 autocast a sum over a large window would lose precision.
        pooled = ((windows.float() * weight).sum(2) / weight.sum(1)).to(kv.dtype)  # (B, nW, 2C)
        pk, pv = pooled.chunk(2, dim=-1)
        return self._heads(pk), self._heads(pv)

    @staticmethod
    def _per_window(pooled: torch.Tensor, num_windows: int) -> torch.Tensor:
        """(B, nh, P, hd) -> (B * nW, nh, P, hd): the same pooled tokens for every window."""
        b = pooled.shape[0]
        return pooled[:, None].expand(b, num_windows, *pooled.shape[1:]).flatten(0, 1)
