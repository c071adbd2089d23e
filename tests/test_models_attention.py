"""Window / shift-window / pooling-window attention (paper §3.3, Table 5) beyond shapes.

The reference below is written independently of vitpose.models.windows: it builds a dense (N, N)
mask on the original grid. Swin's cyclic shift + mask is equivalent to windows whose boundaries are
offset by the shift, i.e. row group (r + wh - sh) // wh (and likewise for columns); the pooled tokens
are means of k and v over the regular windows r // wh, c // ww.
"""
from __future__ import annotations

import math

import pytest
import torch

from vitpose.models import ModelConfig, build_model
from vitpose.models.attention import Attention
from vitpose.models.vit import block_attention_plan
from vitpose.models.windows import shift_region_ids, window_attention_mask, window_partition

DIM, HEADS = 16, 2


def make_attention(window=None, shift=False, pool=False, seed=0) -> Attention:
    torch.manual_seed(seed)
    attn = Attention(DIM, HEADS, window_size=window, shift=shift, pool=pool)
    for p in attn.parameters():  # larger weights than the init so that attention is far from uniform
        torch.nn.init.normal_(p, std=0.5)
    return attn


def copy_weights(dst: Attention, src: Attention) -> Attention:
    dst.load_state_dict(src.state_dict())
    return dst


def reference(attn: Attention, x: torch.Tensor, grid, window=None, shift=False, pool=False) -> torch.Tensor:
    """Dense masked attention on the original grid. x: (B, N, C) -> (B, N, C)."""
    b, n, c = x.shape
    h, w = grid
    hd = c // HEADS
    q, k, v = attn.qkv(x).split(c, dim=-1)
    q, k, v = (t.view(b, n, HEADS, hd).transpose(1, 2) for t in (q, k, v))  # (B, nh, N, hd)
    rows, cols = torch.arange(n) // w, torch.arange(n) % w
    if window is None:
        allowed = torch.ones(n, n, dtype=torch.bool)
    else:
        wh, ww = min(window[0], h), min(window[1], w)
        sh, sw = ((wh // 2 if wh < h else 0), (ww // 2 if ww < w else 0)) if shift else (0, 0)
        gr, gc = (rows + wh - sh) // wh, (cols + ww - sw) // ww
        allowed = (gr[:, None] == gr[None]) & (gc[:, None] == gc[None])
        if pool:
            nww = math.ceil(w / ww)
            gid = (rows // wh) * nww + cols // ww
            num = int(gid.max()) + 1
            onehot = torch.nn.functional.one_hot(gid, num).float()  # (N, nW)
            means = onehot / onehot.sum(0, keepdim=True)
            pk = torch.einsum("bhnd,nw->bhwd", k, means)
            pv = torch.einsum("bhnd,nw->bhwd", v, means)
            k, v = torch.cat([k, pk], 2), torch.cat([v, pv], 2)
            allowed = torch.cat([allowed, torch.ones(n, num, dtype=torch.bool)], 1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = scores.softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(b, n, c))


def tokens(grid, batch=2, seed=1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(batch, grid[0] * grid[1], DIM)


@pytest.mark.parametrize("grid", [(4, 6), (5, 7)])
def test_window_covering_the_grid_equals_full_attention(grid):
    x = tokens(grid)
    full = make_attention()
    for window in (grid, (grid[0] + 3, grid[1] + 5)):  # exactly the grid, and larger (clamped)
        windowed = copy_weights(make_attention(window=window), full)
        torch.testing.assert_close(windowed(x, grid), full(x, grid), atol=1e-5, rtol=1e-5)
        shifted = copy_weights(make_attention(window=window, shift=True), full)
        torch.testing.assert_close(shifted(x, grid), full(x, grid), atol=1e-5, rtol=1e-5)


def test_full_attention_matches_reference():
    grid = (4, 5)
    attn = make_attention()
    x = tokens(grid)
    torch.testing.assert_close(attn(x, grid), reference(attn, x, grid), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("pool", [False, True])
@pytest.mark.parametrize(
    "grid,window",
    [((8, 6), (4, 3)), ((8, 6), (2, 2)), ((5, 7), (2, 3)), ((7, 5), (4, 4)), ((3, 9), (8, 4))],
)
def test_windowed_attention_matches_dense_reference(grid, window, shift, pool):
    """Divisible and padded grids, shift and pool alone and together."""
    attn = make_attention(window=window, shift=shift, pool=pool)
    x = tokens(grid)
    expected = reference(attn, x, grid, window, shift, pool)
    torch.testing.assert_close(attn(x, grid), expected, atol=1e-5, rtol=1e-5)


def test_shift_mask_blocks_attention_across_the_wrapped_boundary():
    """4x4 grid, 2x2 windows, shift 1: the rolled corner window holds rows {3, 0} x cols {3, 0}."""
    grid, window = (4, 4), (2, 2)
    attn = make_attention(window=window, shift=True)
    x = tokens(grid, batch=1)
    base = attn(x, grid).view(4, 4, DIM)
    poked = x.clone()
    poked[0, 0] += 10.0  # token (0, 0)
    diff = (attn(poked, grid).view(4, 4, DIM) - base).abs().amax(-1)
    # Cyclic neighbours of (0, 0) in the rolled window never see it ...
    assert diff[3, 3] == 0 and diff[3, 0] == 0 and diff[0, 3] == 0
    # ... it only changes itself (its region is a single token here).
    assert diff[0, 0] > 0 and (diff > 0).sum() == 1

    # Inside a shifted window tokens do interact: (1, 1) and (2, 2) share the window rows/cols {1, 2}
    # only when shifted.
    poked = x.clone()
    poked[0, 1 * 4 + 1] += 10.0
    shifted_diff = (attn(poked, grid).view(4, 4, DIM) - base).abs().amax(-1)
    regular = copy_weights(make_attention(window=window), attn)
    regular_diff = (regular(poked, grid) - regular(x, grid)).view(4, 4, DIM).abs().amax(-1)
    assert shifted_diff[2, 2] > 0 and regular_diff[2, 2] == 0
    assert regular_diff[0, 0] > 0 and shifted_diff[0, 0] == 0


def test_shift_mask_regions():
    padded, window, shift = (4, 4), (2, 2), (1, 1)
    ids = shift_region_ids(padded, window, shift, torch.device("cpu"))
    assert ids.unique().numel() == 9  # 3 bands per axis, Swin's layout
    mask = window_attention_mask(padded, window, shift, torch.device("cpu"))
    assert mask.shape == (4, 4, 4)
    assert mask[0].all()  # the first rolled window does not wrap
    assert not mask[3].all() and mask[3].diagonal().all()  # the corner window wraps both axes
    assert window_attention_mask((4, 4), (2, 2), (0, 0), torch.device("cpu")) is None  # nothing to mask


def test_window_partition_round_trip():
    from vitpose.models.windows import window_merge

    x = torch.randn(2, 6, 8, 3)
    parts = window_partition(x, (3, 4))
    assert parts.shape == (2 * 4, 12, 3)
    assert torch.equal(parts[1].view(3, 4, 3), x[0, :3, 4:])  # second window of the first image
    assert torch.equal(window_merge(parts, (3, 4), (6, 8)), x)


def test_padding_and_shift_give_finite_gradients():
    grid, window = (5, 7), (4, 4)
    attn = make_attention(window=window, shift=True, pool=True)
    x = tokens(grid).requires_grad_(True)
    attn(x, grid).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_shift_and_pool_add_no_parameters():
    base = dict(arch="vit", embed_dim=32, depth=4, num_heads=2, ratio=2, input_size=(64, 48))
    counts = {}
    for name, extra in {
        "full": {},
        "window": dict(attention="window"),
        "shift": dict(attention="window", shift=True),
        "pool": dict(attention="window", pool=True),
        "shift+pool": dict(attention="window", shift=True, pool=True),
        "vitdet": dict(attention="vitdet", shift=True, pool=True),
    }.items():
        with torch.device("meta"):
            model = build_model(ModelConfig(**base, **extra))
        counts[name] = sum(p.numel() for p in model.parameters())
    assert len(set(counts.values())) == 1, counts


def test_block_plan_vitdet_interleave_and_alternating_shift():
    plan = block_attention_plan(12, "vitdet", (8, 8), shift=True, pool=True)
    assert [i for i, b in enumerate(plan) if b.window_size is None] == [2, 5, 8, 11]
    assert all(b.pool for b in plan if b.window_size is not None)
    assert [i for i, b in enumerate(plan) if b.shift] == [1, 3, 7, 9]  # odd windowed blocks
    plan = block_attention_plan(24, "vitdet")
    assert [i for i, b in enumerate(plan) if b.window_size is None] == [5, 11, 17, 23]
    plan = block_attention_plan(6, "window", (4, 4), shift=True)
    assert [b.shift for b in plan] == [False, True] * 3
    assert all(b.window_size is None for b in block_attention_plan(3, "vitdet"))  # depth // 4 == 0
    assert all(b.window_size is None for b in block_attention_plan(12, "full"))


def test_model_blocks_follow_the_plan():
    cfg = ModelConfig(arch="vitpose-b", ratio=2, attention="vitdet", window_size=(8, 8), shift=True, pool=True)
    with torch.device("meta"):
        model = build_model(cfg)
    kinds = [(b.attn.window_size, b.attn.shift, b.attn.pool) for b in model.backbone.blocks]
    assert kinds[2] == (None, False, False) and kinds[1] == ((8, 8), True, True) and kinds[0] == ((8, 8), False, True)
