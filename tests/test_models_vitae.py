"""ViTAE backbone of ViTPose-G (models/vitae.py): the convolution branch, the preset's size, weight loading."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stages import model_info as model_info_stage
from stages._cli import run_main
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import load_pretrained, load_vitpose_checkpoint, save_vitpose_checkpoint
from vitpose.models.vitae import ViTAEBlock
from vitpose.utils.errors import CheckpointError, ConfigError

TINY = dict(embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=8)


def tiny(arch: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(ModelConfig(arch=arch, **{**TINY, **overrides})).eval()


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_conv_branch_adds_the_documented_parameters_and_changes_the_output():
    vit, vitae = tiny("vit"), tiny("vitae")
    c, hidden, groups = 32, 4 * 32, math.gcd(32, 64)
    # per block: two 3x3 grouped convolutions, their biases, BatchNorm's weight and bias
    pcm = 2 * 9 * c * hidden // groups + hidden + c + 2 * hidden
    assert count(vitae) - count(vit) == TINY["depth"] * pcm
    assert all(isinstance(b, ViTAEBlock) for b in vitae.backbone.blocks)

    # With the ViT's weights and a zero last convolution, the ViTAE is exactly that ViT ...
    vitae.load_state_dict(vit.state_dict(), strict=False)
    for block in vitae.backbone.blocks:
        torch.nn.init.zeros_(block.pcm[3].weight)
        torch.nn.init.zeros_(block.pcm[3].bias)
    images = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(vitae(images), vit(images))
        # ... and the branch, once it has weights, changes what the model computes (the features:
        # the untrained head's N(0, 0.001) weights make every heatmap tiny).
        vitae.backbone.blocks[0].pcm[3].weight.normal_(0, 0.1)
        assert not torch.allclose(vitae.backbone(images), vit.backbone(images), atol=1e-3)
        assert not torch.equal(vitae(images), vit(images))


def test_conv_branch_reads_the_grid_tokens_only():
    block = ViTAEBlock(16, 2, groups=16).eval()
    grid = (4, 3)
    tokens = torch.randn(2, 12, 16)
    prefixed = torch.cat([torch.randn(2, 1, 16), tokens], dim=1)  # a knowledge token in front
    with torch.no_grad():
        out = block.conv_branch(prefixed, grid)
        assert torch.equal(out[:, :1], torch.zeros(2, 1, 16))
        assert torch.allclose(out[:, 1:], block.conv_branch(tokens, grid))
        with pytest.raises(ValueError, match="whole 4x3 token grid"):
            block.conv_branch(tokens[:, :5], grid)  # masked tokens (MAE) have no grid


def test_vitpose_g_has_about_one_billion_parameters_at_576x432():
    cfg = ModelConfig(arch="vitpose-g", input_size=(576, 432))
    with torch.device("meta"):
        model = build_model(cfg)
    c, depth, grid = 1408, 40, (36, 27)
    vit_block = 12 * c * c + 13 * c  # qkv, proj, fc1, fc2 (+ biases), two LayerNorms
    pcm = 2 * 9 * c * 4 * c // 64 + 13 * c  # two 3x3 convolutions in 64 groups, biases, BatchNorm
    embeddings = c * 3 * 16 * 16 + c + (1 + grid[0] * grid[1]) * c + 2 * c  # patch, position, last_norm
    assert count(model.backbone) == depth * (vit_block + pcm) + embeddings == 1_044_713_472
    assert 1.0e9 < count(model) < 1.06e9


def test_model_info_command_knows_vitae(capsys):
    code = run_main(model_info_stage.main, ["--model", "vitae", "--embed-dim", "32", "--depth", "2", "--heads", "2",
                                            "--input", "64x48", "--decoder-channels", "8", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and '"model": "vitae"' in out and '"heatmap": [16, 12]' in out


def test_vitae_config_rules():
    assert ModelConfig(arch="vitpose-g").vit_args()["embed_dim"] == 1408
    assert ModelConfig(arch="vitpose-g").is_vitae and not ModelConfig(arch="vitpose-h").is_vitae
    with pytest.raises(ConfigError, match="depth: required when arch is 'vitae'"):
        ModelConfig(arch="vitae", embed_dim=32, num_heads=2)
    rates = [b.drop_path.drop_prob for b in tiny("vitae", depth=3, drop_path_rate=0.55).backbone.blocks[1:]]
    assert rates == pytest.approx([0.275, 0.55])  # the ViT's linear schedule, to Table 1's 0.55 for G


def _vitae_weights_file(path, reference, kernel: int = 14, pcm_name: str = "PCM"):
    """An MAE-layout ViTAE encoder (timm names, ViTAE's `PCM`) with a `kernel`-sized patch embedding."""
    torch.manual_seed(1)
    encoder = {k: v.clone() for k, v in reference.backbone.state_dict().items()
               if not k.startswith(("last_norm", "pos_embed", "patch_embed"))}
    encoder = {k.replace(".pcm.", f".{pcm_name}.") if pcm_name else k: v for k, v in encoder.items()
               if pcm_name or ".pcm." not in k}
    encoder.update({"cls_token": torch.zeros(1, 1, 32), "pos_embed": torch.randn(1, 1 + 16 * 16, 32),
                    "patch_embed.proj.weight": torch.randn(32, 3, kernel, kernel),
                    "patch_embed.proj.bias": torch.randn(32), "norm.weight": torch.ones(32),
                    "norm.bias": torch.zeros(32)})
    torch.save({"model": encoder}, path)
    return encoder


def test_patch14_vitae_weights_are_zero_padded_to_16(tmp_path):
    reference = tiny("vitae", seed=3)
    for block in reference.backbone.blocks:
        block.pcm[0].weight.data.normal_()
    path = tmp_path / "vitae_g_encoder.pth"
    file = _vitae_weights_file(path, reference)
    model = tiny("vitae", seed=4)
    report = load_pretrained(model, path)
    kernel = model.backbone.patch_embed.proj.weight
    assert kernel.shape == (32, 3, 16, 16)
    assert torch.equal(kernel, F.pad(file["patch_embed.proj.weight"], (1, 1, 1, 1)))
    border = torch.zeros(32, 3, 16)
    assert torch.equal(kernel[..., 0, :], border) and torch.equal(kernel[..., :, 15], border)
    assert torch.equal(model.backbone.blocks[1].pcm[0].weight, file["blocks.1.PCM.0.weight"])
    assert any("kernel 14x14 zero-padded to 16x16" in note for note in report.converted)
    assert not [k for k in report.missing if k.startswith("backbone.blocks")]


def test_weights_without_the_conv_branch_are_refused(tmp_path):
    path = tmp_path / "plain_vit.pth"
    _vitae_weights_file(path, tiny("vitae"), pcm_name="")  # a ViT-g style encoder: no PCM
    model = tiny("vitae", seed=4)
    before = model.backbone.patch_embed.proj.weight.clone()
    with pytest.raises(CheckpointError, match=r"blocks\.0\.pcm\.0\.\w+ is missing from the file"):
        load_pretrained(model, path)
    assert torch.equal(model.backbone.patch_embed.proj.weight, before)  # nothing was loaded


def test_vitae_released_format_round_trip(tmp_path):
    source = tiny("vitae", seed=5)
    for block in source.backbone.blocks:
        block.pcm[1].running_mean.normal_()
    save_vitpose_checkpoint(source, tmp_path / "g.pth")
    target = tiny("vitae", seed=6)
    load_vitpose_checkpoint(target, tmp_path / "g.pth")
    images = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(target(images), source(images))
