"""Parameters and GFLOPs against the paper (Tables 5, 6, 9), counted on the meta device.

Paper numbers that a faithful implementation does not reach within the asked tolerance are tested
against their exact analytic value instead, with the discrepancy stated (ViTPose-L parameters).
"""
from __future__ import annotations

import pytest
import torch

from vitpose.models import ModelConfig, build_model
from vitpose.models.info import model_info, module_macs, trainable_macs


def rel(a: float, b: float) -> float:
    return abs(a - b) / b


def vit_backbone_params(c: int, depth: int, tokens: int) -> int:
    """Analytic count: per block 12C^2 + 13C (qkv, proj, fc1, fc2 with biases, two LayerNorms),
    patch conv 3*16*16*C + C, position embedding (N+1)*C, last_norm 2C."""
    return depth * (12 * c * c + 13 * c) + (3 * 256 * c + c) + (tokens + 1) * c + 2 * c


@pytest.mark.parametrize("arch,paper_M", [("vitpose-b", 86), ("vitpose-h", 632)])
def test_backbone_params_within_1pct_of_paper(arch, paper_M):
    info = model_info(ModelConfig(arch=arch))
    assert rel(info["backbone_params_M"], paper_M) < 0.01, info["backbone_params_M"]


def test_vitpose_l_params_discrepancy_is_the_papers():
    """ViTPose-L's backbone has 303.30 M parameters; the paper prints 307 M (1.2 % more).

    The paper's 86 / 307 / 632 are the ViT paper's numbers for ViT-B/16, ViT-L/16 and ViT-H/14; no
    ViT-L/16 with ViTPose's (1, 193, 1024) position embedding reaches 307 M (with the classic head
    the model has 308.54 M, but counting the head would put ViTPose-B at 90.0 M, not 86 M).
    """
    info = model_info(ModelConfig(arch="vitpose-l"))
    with torch.device("meta"):
        model = build_model(ModelConfig(arch="vitpose-l"))
    exact = sum(p.numel() for p in model.backbone.parameters())
    assert exact == vit_backbone_params(1024, 24, 192) == 303_296_512
    assert 0.011 < rel(info["backbone_params_M"], 307) < 0.013  # the reported discrepancy


@pytest.mark.parametrize("arch,c,depth", [("vitpose-s", 384, 12), ("vitpose-b", 768, 12), ("vitpose-h", 1280, 32)])
def test_backbone_params_match_analytic_count(arch, c, depth):
    with torch.device("meta"):
        model = build_model(ModelConfig(arch=arch))
    assert sum(p.numel() for p in model.backbone.parameters()) == vit_backbone_params(c, depth, 192)


def test_vitpose_b_backbone_gflops():
    info = model_info(ModelConfig(arch="vitpose-b", decoder="classic"))
    assert rel(info["gflops"], 17.1) < 0.03, info["gflops"]
    # REFERENCE: ~18.5 G with the classic head
    assert rel(info["total_gflops"], 18.5) < 0.03, info["total_gflops"]
    assert info["heatmap"] == [64, 48] and info["input"] == [256, 192] and info["feature"] == [16, 12]


def test_counter_includes_the_attention_matmuls():
    """Full minus window attention at 1/8 features is exactly the attention-matmul difference."""
    full = model_info(ModelConfig(ratio=2))["gflops"]
    window = model_info(ModelConfig(ratio=2, attention="window"))["gflops"]
    n, c, tokens_per_window, windows = 32 * 24, 768, 64, 12
    qk_and_av = 2 * n * n * c - 2 * windows * tokens_per_window ** 2 * c  # per block
    assert full - window == pytest.approx(12 * qk_and_av / 1e9, abs=1e-3)


TABLE5 = [  # row, config overrides, paper GFLOPs (ViTPose-B, 1/8 features, 256x192)
    ("full", dict(), 76.59),
    ("window", dict(attention="window"), 66.31),
    ("window+shift", dict(attention="window", shift=True), 66.31),
    ("window+pool", dict(attention="window", pool=True), 66.39),
    ("window+shift+pool", dict(attention="window", shift=True, pool=True), 66.39),
    ("full+window", dict(attention="vitdet"), 69.94),
    ("window+shift+pool-16x12", dict(attention="window", shift=True, pool=True, window_size=(16, 12)), 68.46),
]


@pytest.mark.parametrize("row,overrides,paper", TABLE5, ids=[r[0] for r in TABLE5])
def test_table5_gflops_within_2pct(row, overrides, paper):
    info = model_info(ModelConfig(arch="vitpose-b", ratio=2, **overrides))
    assert info["feature"] == [32, 24] and info["heatmap"] == [64, 48]
    assert rel(info["gflops"], paper) < 0.02, (row, info["gflops"], paper)


@pytest.mark.parametrize("freeze,paper", [(None, 17.1), ("mhsa", 10.9), ("ffn", 6.2)])
def test_table6_trainable_gflops_within_3pct(freeze, paper):
    info = model_info(ModelConfig(arch="vitpose-b", freeze=freeze))
    assert rel(info["trainable_gflops"], paper) < 0.03, (freeze, info["trainable_gflops"])
    assert info["gflops"] == pytest.approx(17.1002, abs=1e-3)  # freezing changes no computation


def test_trainable_macs_attributes_attention_matmuls_to_attn():
    """With FFN frozen the trainable work is exactly qkv + proj + attention matmuls per block."""
    info = model_info(ModelConfig(arch="vitpose-b", freeze="ffn"))
    n, c = 192, 768
    per_block = n * c * 3 * c + n * c * c + 2 * n * n * c
    assert info["trainable_gflops"] == pytest.approx(12 * per_block / 1e9, abs=1e-4)
    info = model_info(ModelConfig(arch="vitpose-b", freeze="mhsa"))
    mlp_and_patch = 12 * 2 * n * c * 4 * c + n * c * 3 * 256
    assert info["trainable_gflops"] == pytest.approx(mlp_and_patch / 1e9, abs=1e-4)


def test_module_macs_on_a_small_module():
    layer = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    macs, out = module_macs(layer, torch.zeros(3, 4))
    assert macs == {"": 3 * (4 * 8 + 8 * 2), "0": 3 * 4 * 8, "1": 3 * 8 * 2} and out.shape == (3, 2)
    layer[0].requires_grad_(False)
    assert trainable_macs(layer, macs) == 3 * 8 * 2


def test_head_and_trainable_params():
    info = model_info(ModelConfig(arch="vitpose-b", freeze="mhsa"))
    attn_and_norm1 = 12 * (768 * 3 * 768 + 3 * 768 + 768 * 768 + 768 + 2 * 768)
    assert info["trainable_params_M"] == pytest.approx(info["params_M"] - attn_and_norm1 / 1e6, abs=1e-4)
    assert info["head_params_M"] == pytest.approx(info["params_M"] - info["backbone_params_M"], abs=1e-3)
    r50 = model_info(ModelConfig(arch="resnet50"))
    assert r50["params_M"] == pytest.approx(34.0, abs=0.1)  # SimpleBaseline-R50: 34.0 M
    assert r50["heatmap"] == [64, 48]
