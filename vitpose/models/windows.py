"""Window bookkeeping for windowed attention (paper §3.3, Table 5): partition, merge, masks.

The grid is padded at the bottom/right to a multiple of the window (ViTDet style); padded tokens are
masked out as keys, so results never depend on the padding. Shifted windows follow Swin: pad, then
roll the padded grid by minus half a window, and mask pairs that came from different sides of the
wrap-around.
"""
from __future__ import annotations

import math

import torch


def effective_window(grid: tuple[int, int], window: tuple[int, int]) -> tuple[int, int]:
    """A window larger than the grid shrinks to the grid (as in Swin): no all-padding windows."""
    return min(window[0], grid[0]), min(window[1], grid[1])


def padded_size(grid: tuple[int, int], window: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(grid[0] / window[0]) * window[0], math.ceil(grid[1] / window[1]) * window[1]


def shift_size(grid: tuple[int, int], window: tuple[int, int]) -> tuple[int, int]:
    """Half a window; 0 along an axis where one window already covers the whole grid."""
    return tuple(w // 2 if w < g else 0 for g, w in zip(grid, window))  # type: ignore[return-value]


def window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """x: (B, Hp, Wp, C) with Hp, Wp multiples of the window -> (B * nW, wh * ww, C), windows row-major."""
    b, hp, wp, c = x.shape
    wh, ww = window
    x = x.view(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * (hp // wh) * (wp // ww), wh * ww, c)


def window_merge(windows: torch.Tensor, window: tuple[int, int], padded: tuple[int, int]) -> torch.Tensor:
    """Inverse of window_partition: (B * nW, wh * ww, C) -> (B, Hp, Wp, C)."""
    wh, ww = window
    hp, wp = padded
    nh, nw = hp // wh, wp // ww
    c = windows.shape[-1]
    x = windows.view(-1, nh, nw, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, hp, wp, c)


def valid_token_map(grid: tuple[int, int], padded: tuple[int, int], device: torch.device) -> torch.Tensor:
    """(Hp, Wp) bool, True on real tokens and False on padding."""
    valid = torch.zeros(padded, dtype=torch.bool, device=device)
    valid[: grid[0], : grid[1]] = True
    return valid


def shift_region_ids(
    padded: tuple[int, int], window: tuple[int, int], shift: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """(Hp, Wp) long region labels of the rolled grid (Swin): equal labels may attend to each other.

    After rolling by -shift, the last window row/column holds tokens from both ends of the grid;
    labelling the three bands [0, Hp-wh), [Hp-wh, Hp-sh), [Hp-sh, Hp) per axis separates them.
    """
    def bands(size: int, win: int, s: int) -> torch.Tensor:
        ids = torch.zeros(size, dtype=torch.long, device=device)
        if s > 0:
            ids[size - win: size - s] = 1
            ids[size - s:] = 2
        return ids

    rows = bands(padded[0], window[0], shift[0])
    cols = bands(padded[1], window[1], shift[1])
    return rows[:, None] * 3 + cols[None, :]


def window_attention_mask(
    grid: tuple[int, int],
    window: tuple[int, int],
    shift: tuple[int, int],
    device: torch.device,
) -> torch.Tensor | None:
    """Bool mask (nW, T, T), True = may attend, for the (rolled, padded) windows; None when not needed.

    Keys on padding are masked; with a shift, pairs from different regions are masked. Every token
    may always attend to itself, so no query row is empty (an empty row gives NaN in softmax, and NaN
    gradients would leak into real tokens' keys even though padded outputs are discarded).
    """
    padded = padded_size(grid, window)
    needs_shift = shift[0] > 0 or shift[1] > 0
    if padded == tuple(grid) and not needs_shift:
        return None
    valid = valid_token_map(grid, padded, device)
    if needs_shift:
        valid = torch.roll(valid, shifts=(-shift[0], -shift[1]), dims=(0, 1))
    key_ok = window_partition(valid[None, :, :, None], window)[..., 0]  # (nW, T)
    allowed = key_ok[:, None, :].expand(-1, key_ok.shape[1], -1)  # (nW, T, T)
    if needs_shift:
        ids = shift_region_ids(padded, window, shift, device)
        ids = window_partition(ids[None, :, :, None], window)[..., 0]  # (nW, T)
        allowed = allowed & (ids[:, :, None] == ids[:, None, :])
    eye = torch.eye(key_ok.shape[1], dtype=torch.bool, device=device)
    return allowed | eye
