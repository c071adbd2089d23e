"""Layer-wise lr decay, weight-decay exemptions and the warm-up / step schedule."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vitpose.engine.optim import build_optimizer, layer_id, layer_lr_scale, param_groups
from vitpose.engine.schedule import WarmupStepFactor, build_scheduler, default_milestones


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(c)
        self.attn = nn.Linear(c, c)


class _TinyVitPose(nn.Module):
    """Released ViTPose parameter names on a toy: patch_embed, pos_embed, blocks, last_norm, head."""

    def __init__(self, depth: int = 3, c: int = 4) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.patch_embed = nn.Module()
        self.backbone.patch_embed.proj = nn.Conv2d(3, c, 2)
        self.backbone.pos_embed = nn.Parameter(torch.zeros(1, 5, c))
        self.backbone.blocks = nn.ModuleList(_Block(c) for _ in range(depth))
        self.backbone.last_norm = nn.LayerNorm(c)
        self.keypoint_head = nn.Module()
        self.keypoint_head.final_layer = nn.Conv2d(c, 2, 1)


def _scale_of(groups: list[dict], param: torch.Tensor) -> float:
    return next(g["lr_scale"] for g in groups if any(p is param for p in g["params"]))


def _wd_of(groups: list[dict], param: torch.Tensor) -> float:
    return next(g["weight_decay"] for g in groups if any(p is param for p in g["params"]))


def test_layer_ids_follow_released_rule():
    depth = 12
    assert layer_id("backbone.patch_embed.proj.weight", depth) == 0
    assert layer_id("backbone.pos_embed", depth) == 0
    assert layer_id("backbone.blocks.0.attn.qkv.weight", depth) == 1
    assert layer_id("backbone.blocks.11.mlp.fc2.bias", depth) == 12
    assert layer_id("backbone.last_norm.weight", depth) == 13
    assert layer_id("keypoint_head.final_layer.weight", depth) == 13
    assert layer_id("module.backbone.blocks.3.norm1.weight", depth) == 4  # DDP prefix stripped


def test_param_groups_scales_decay_and_frozen():
    model = _TinyVitPose(depth=3)
    model.backbone.blocks[1].attn.weight.requires_grad_(False)
    r = 0.5
    groups = param_groups(model, lr=1.0, weight_decay=0.1, layer_decay=r)
    n = 3 + 2
    assert _scale_of(groups, model.backbone.pos_embed) == pytest.approx(r ** (n - 1))
    assert _scale_of(groups, model.backbone.blocks[0].attn.weight) == pytest.approx(r ** (n - 2))
    assert _scale_of(groups, model.backbone.blocks[2].attn.weight) == pytest.approx(r)
    assert _scale_of(groups, model.keypoint_head.final_layer.weight) == 1.0
    for g in groups:
        assert g["lr"] == pytest.approx(g["lr_scale"])
    # weight decay: matrices yes; 1-D norms, biases and pos_embed no
    assert _wd_of(groups, model.backbone.blocks[0].attn.weight) == 0.1
    assert _wd_of(groups, model.backbone.patch_embed.proj.weight) == 0.1
    assert _wd_of(groups, model.backbone.blocks[0].attn.bias) == 0.0
    assert _wd_of(groups, model.backbone.blocks[0].norm1.weight) == 0.0
    assert _wd_of(groups, model.backbone.pos_embed) == 0.0
    # frozen parameter excluded, every trainable one present exactly once
    listed = [p for g in groups for p in g["params"]]
    assert not any(p is model.backbone.blocks[1].attn.weight for p in listed)
    assert len(listed) == len({id(p) for p in listed}) == sum(1 for p in model.parameters() if p.requires_grad)


def test_cnn_backbone_gets_no_layer_decay():
    model = nn.Sequential()
    model.backbone = nn.Conv2d(3, 4, 3)
    model.keypoint_head = nn.Conv2d(4, 2, 1)
    groups = param_groups(model, lr=2.0, weight_decay=0.1, layer_decay=0.5)
    assert all(g["lr_scale"] == 1.0 and g["lr"] == 2.0 for g in groups)
    assert layer_lr_scale("backbone.weight", depth=0, layer_decay=0.5) == 1.0


def test_schedule_warmup_and_milestones():
    f = WarmupStepFactor(iters_per_epoch=10, milestones=[3, 5], gamma=0.1, warmup_iters=20, warmup_ratio=0.001)
    assert f(0) == pytest.approx(0.001)
    assert f(10) == pytest.approx(1 - 0.5 * 0.999)
    assert f(20) == pytest.approx(1.0)
    assert f(29) == pytest.approx(1.0)
    assert f(30) == pytest.approx(0.1)
    assert f(49) == pytest.approx(0.1)
    assert f(50) == pytest.approx(0.01)
    assert default_milestones(210) == [170, 200]
    assert default_milestones(21) == pytest.approx([17, 20])
    g = WarmupStepFactor(iters_per_epoch=10, milestones=[1.55], warmup_iters=0)  # fractional epoch
    assert (g(15), g(16)) == (1.0, pytest.approx(0.1))


def test_scheduler_applies_decay_once_and_multiplies_factor():
    model = _TinyVitPose(depth=2)
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.1, layer_decay=0.5)
    sched = build_scheduler(opt, iters_per_epoch=4, milestones=[2], warmup_iters=2, warmup_ratio=0.5)
    seen = []
    for _ in range(12):
        seen.append({g["name"]: g["lr"] for g in opt.param_groups})
        opt.step()
        sched.step()
    head = "layer_3_decay"
    emb = "layer_0_decay"
    assert [round(s[head] / 1e-3, 6) for s in seen] == [0.5, 0.75] + [1.0] * 6 + [0.1] * 4
    # the layer-decay ratio stays fixed over time (never re-applied)
    for s in seen:
        assert s[emb] / s[head] == pytest.approx(0.5 ** 3)
    assert all(math.isfinite(v) for s in seen for v in s.values())


def test_vitpose_b_layer_decay_matches_released_scales():
    """REFERENCE §5: ViTPose-B (r = 0.75, n = 14) embeddings 0.0238, block 0 0.0317, block 11 0.75, head 1.0."""
    from vitpose.models import ModelConfig, build_model

    with torch.device("meta"):  # shapes and names only: no 86M-parameter allocation
        model = build_model(ModelConfig(arch="vitpose-b", decoder="classic", input_size=(256, 192)))
    opt = build_optimizer(model, lr=5e-4, weight_decay=0.1, layer_decay=0.75)
    by_name = {n: g for g in opt.param_groups for n in g["param_names"]}
    expected = {
        "backbone.patch_embed.proj.weight": 0.0238,
        "backbone.pos_embed": 0.0238,
        "backbone.blocks.0.attn.qkv.weight": 0.0317,
        "backbone.blocks.0.norm1.weight": 0.0317,
        "backbone.blocks.11.mlp.fc2.weight": 0.75,
        "backbone.last_norm.weight": 1.0,
        "keypoint_head.final_layer.weight": 1.0,
        "keypoint_head.deconv_layers.0.weight": 1.0,
    }
    for name, scale in expected.items():
        assert by_name[name]["lr_scale"] == pytest.approx(scale, abs=5e-5), name
        assert by_name[name]["lr"] == pytest.approx(5e-4 * by_name[name]["lr_scale"]), name
    assert by_name["backbone.pos_embed"]["weight_decay"] == 0.0
    assert by_name["backbone.blocks.0.attn.qkv.bias"]["weight_decay"] == 0.0
    assert by_name["backbone.blocks.0.attn.qkv.weight"]["weight_decay"] == 0.1
    assert {g["layer_id"] for g in opt.param_groups} == set(range(14))
    assert len(by_name) == sum(1 for _ in model.parameters())
