"""Architecture of the models: presets, shapes at every Table 4 resolution, released names and numerics,
decoders, ResNets, Table 5 variants (forward + backward), partial finetuning (Table 6), config checks."""
from __future__ import annotations

import pytest
import torch

from vitpose.models import VIT_PRESETS, ModelConfig, build_model
from vitpose.models.decoders import ClassicDecoder, SimpleDecoder
from vitpose.utils.errors import ConfigError

TABLE4 = [(224, 224), (256, 192), (256, 256), (384, 288), (384, 384), (576, 432)]
PRESETS = ["vitpose-s", "vitpose-b", "vitpose-l", "vitpose-h"]
TABLE5 = {
    "full": dict(attention="full"),
    "window": dict(attention="window"),
    "window+shift": dict(attention="window", shift=True),
    "window+pool": dict(attention="window", pool=True),
    "window+shift+pool": dict(attention="window", shift=True, pool=True),
    "full+window": dict(attention="vitdet"),
    "window+shift+pool-16x12": dict(attention="window", shift=True, pool=True, window_size=(16, 12)),
}


def test_presets_are_the_papers():
    # Architecture only: training hyper-parameters (drop path, layer decay) are params.yaml's.
    assert VIT_PRESETS["vitpose-s"] == dict(embed_dim=384, depth=12, num_heads=12)
    assert VIT_PRESETS["vitpose-b"] == dict(embed_dim=768, depth=12, num_heads=12)
    assert VIT_PRESETS["vitpose-l"] == dict(embed_dim=1024, depth=24, num_heads=16)
    assert VIT_PRESETS["vitpose-h"] == dict(embed_dim=1280, depth=32, num_heads=16)


def cpu_forward_shape(arch: str, decoder: str, size: tuple[int, int]) -> None:
    """Real CPU forward at the preset's width and heads, depth cut to 1 to keep it cheap."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, decoder=decoder, input_size=size, depth=1)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 17, size[0] // 4, size[1] // 4)
    assert model.heatmap_size == (size[0] // 4, size[1] // 4)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("decoder", ["classic", "simple"])
@pytest.mark.parametrize("size", TABLE4, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cpu_forward_vitpose_b_every_table4_resolution(size, decoder):
    cpu_forward_shape("vitpose-b", decoder, size)


@pytest.mark.parametrize("decoder", ["classic", "simple"])
@pytest.mark.parametrize("arch", ["vitpose-s", "vitpose-l", "vitpose-h"])
def test_cpu_forward_other_presets(arch, decoder):
    cpu_forward_shape(arch, decoder, (256, 192))


@pytest.mark.parametrize("arch", PRESETS)
def test_every_preset_decoder_resolution_on_meta(arch):
    """Shapes of every preset x decoder x Table 4 resolution (meta: no weights are allocated)."""
    for size in TABLE4:
        for decoder in ("classic", "simple"):
            with torch.device("meta"):
                model = build_model(ModelConfig(arch=arch, decoder=decoder, input_size=size, depth=2))
            out = model(torch.empty(2, 3, *size, device="meta"))
            assert out.shape == (2, 17, size[0] // 4, size[1] // 4), (arch, decoder, size)


@pytest.mark.parametrize("arch", PRESETS)
def test_full_depth_on_meta(arch):
    with torch.device("meta"):
        model = build_model(ModelConfig(arch=arch, input_size=(384, 288)))
    assert len(model.backbone.blocks) == VIT_PRESETS[arch]["depth"]
    assert model(torch.empty(1, 3, 384, 288, device="meta")).shape == (1, 17, 96, 72)


def test_patch_embedding_and_position_embedding_layout():
    with torch.device("meta"):
        b = build_model(ModelConfig(arch="vitpose-b")).backbone
        b8 = build_model(ModelConfig(arch="vitpose-b", ratio=2)).backbone
    conv = b.patch_embed.proj
    assert (conv.kernel_size, conv.stride, conv.padding) == ((16, 16), (16, 16), (2, 2))
    assert b.grid_size == (16, 12) and b.pos_embed.shape == (1, 16 * 12 + 1, 768)
    conv = b8.patch_embed.proj
    assert (conv.kernel_size, conv.stride, conv.padding) == ((16, 16), (8, 8), (4, 4))
    assert b8.grid_size == (32, 24) and b8.pos_embed.shape == (1, 32 * 24 + 1, 768)
    out = b8(torch.empty(1, 3, 256, 192, device="meta"))
    assert out.shape == (1, 768, 32, 24)


def test_class_slot_is_folded_into_every_patch_token():
    """forward adds pos[:, 1:] + pos[:, :1]: moving a constant between the slot and the grid is a no-op."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48))).eval()
    x = torch.randn(2, 3, 64, 48)
    const = torch.randn(32)
    with torch.no_grad():
        model.backbone.pos_embed[:, 0] = const
        a = model(x)
        model.backbone.pos_embed[:, 0] = 0
        model.backbone.pos_embed[:, 1:] += const
        b = model(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_released_module_names_and_numerics():
    with torch.device("meta"):
        model = build_model(ModelConfig(arch="vitpose-b"))
    keys = list(model.state_dict())
    assert keys[:3] == ["backbone.pos_embed", "backbone.patch_embed.proj.weight", "backbone.patch_embed.proj.bias"]
    for i in (0, 11):
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            assert f"backbone.blocks.{i}.{part}.weight" in keys and f"backbone.blocks.{i}.{part}.bias" in keys
    head = [k for k in keys if k.startswith("keypoint_head")]
    assert head == [
        "keypoint_head.deconv_layers.0.weight",
        *[f"keypoint_head.deconv_layers.1.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")],
        "keypoint_head.deconv_layers.3.weight",
        *[f"keypoint_head.deconv_layers.4.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")],
        "keypoint_head.final_layer.weight", "keypoint_head.final_layer.bias",
    ]
    assert "backbone.last_norm.weight" in keys and not any("cls_token" in k for k in keys)
    bb = model.backbone
    assert bb.last_norm.eps == 1e-6 and bb.blocks[0].norm1.eps == 1e-6
    assert bb.blocks[0].attn.qkv.out_features == 3 * 768 and bb.blocks[0].attn.qkv.bias is not None
    assert bb.blocks[0].mlp.fc1.out_features == 4 * 768
    assert isinstance(bb.blocks[0].mlp.act, torch.nn.GELU) and bb.blocks[0].mlp.act.approximate == "none"
    # Drop path is a training hyper-parameter (params.yaml, Table 1: 0.3 for ViTPose-B): off unless given,
    # then linearly increasing over the blocks as released.
    assert all(getattr(blk.drop_path, "drop_prob", 0.0) == 0.0 for blk in bb.blocks)
    with torch.device("meta"):
        bb = build_model(ModelConfig(arch="vitpose-b", drop_path_rate=0.3)).backbone
    rates = [getattr(blk.drop_path, "drop_prob", 0.0) for blk in bb.blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.3, 12).tolist())


def test_classic_decoder_blocks_per_feature_stride():
    assert len(ClassicDecoder(64, 17, feature_stride=16, channels=8).deconv_layers) == 6  # paper: 2 blocks
    assert len(ClassicDecoder(64, 17, feature_stride=8, channels=8).deconv_layers) == 3  # 1/8 features
    assert len(ClassicDecoder(64, 17, feature_stride=32, channels=8).deconv_layers) == 9  # SimpleBaseline
    deconv = ClassicDecoder(64, 17, channels=8).deconv_layers[0]
    assert (deconv.kernel_size, deconv.stride, deconv.padding, deconv.output_padding) == ((4, 4), (2, 2), (1, 1), (0, 0))
    assert deconv.bias is None
    assert SimpleDecoder(64, 17, feature_stride=16).scale_factor == 4
    assert SimpleDecoder(64, 17, feature_stride=8).scale_factor == 2
    assert SimpleDecoder(64, 17, feature_stride=32).scale_factor == 8


def test_simple_decoder_applies_relu_before_upsampling():
    torch.manual_seed(0)
    dec = SimpleDecoder(4, 3, feature_stride=16)
    x = torch.randn(1, 4, 4, 3)
    up = torch.nn.functional.interpolate
    relu_first = dec.final_layer(up(torch.relu(x), scale_factor=4, mode="bilinear", align_corners=False))
    relu_last = dec.final_layer(torch.relu(up(x, scale_factor=4, mode="bilinear", align_corners=False)))
    assert not torch.allclose(relu_first, relu_last)  # the order matters for this input
    torch.testing.assert_close(dec(x), relu_first)
    assert dec.final_layer.kernel_size == (3, 3) and dec.final_layer.padding == (1, 1)


def test_head_init_is_released():
    torch.manual_seed(0)
    dec = ClassicDecoder(256, 17)
    assert abs(dec.deconv_layers[0].weight.std().item() - 0.001) < 1e-4
    assert torch.all(dec.final_layer.bias == 0) and torch.all(dec.deconv_layers[1].weight == 1)


@pytest.mark.parametrize("arch", ["resnet50", "resnet152"])
@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_resnet_simplebaseline(arch, decoder):
    with torch.device("meta"):
        model = build_model(ModelConfig(arch=arch, decoder=decoder))
    feats = model.forward_features(torch.empty(1, 3, 256, 192, device="meta"))
    assert feats.shape == (1, 2048, 8, 6)
    assert model(torch.empty(1, 3, 256, 192, device="meta")).shape == (1, 17, 64, 48)
    if decoder == "classic":
        assert len(model.keypoint_head.deconv_layers) == 9  # 3 deconv blocks, as SimpleBaseline
    else:
        assert model.keypoint_head.scale_factor == 8


def test_resnet50_cpu_forward():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet50", decoder="simple")).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 192)).shape == (1, 17, 64, 48)


# depth 8 so that the ViTDet interleave (every depth // 4 = 2nd block full) has both kinds of blocks
TINY = dict(arch="vit", embed_dim=32, depth=8, num_heads=2, ratio=2, input_size=(256, 192), decoder_channels=16)


@pytest.mark.parametrize("row", list(TABLE5))
def test_table5_variants_forward_backward(row):
    """Every Table 5 row on a tiny ViT at the real 32x24 grid (1/8 features of 256x192)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY, **TABLE5[row])).train()
    windowed = [b.attn.window_size is not None for b in model.backbone.blocks]
    expected = {"full": [False] * 8, "full+window": [True, False] * 4}.get(row, [True] * 8)
    assert windowed == expected
    out = model(torch.randn(2, 3, 256, 192))
    assert out.shape == (2, 17, 64, 48)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("row", list(TABLE5))
def test_table5_variants_full_size_on_meta(row):
    with torch.device("meta"):
        model = build_model(ModelConfig(arch="vitpose-b", ratio=2, **TABLE5[row]))
    out = model(torch.empty(2, 3, 256, 192, device="meta"))
    assert out.shape == (2, 17, 64, 48)
    out.sum().backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.shape == (3 * 768, 768)


def test_window_that_does_not_divide_the_grid():
    """16x12 tokens (ratio 1) with 8x8 windows: padded to 16x16, same output shape, finite gradients."""
    model = build_model(ModelConfig(arch="vit", embed_dim=32, depth=2, num_heads=2, attention="window", shift=True, pool=True))
    out = model(torch.randn(1, 3, 256, 192))
    out.sum().backward()
    assert out.shape == (1, 17, 64, 48) and torch.isfinite(model.backbone.pos_embed.grad).all()


@pytest.mark.parametrize("part", ["mhsa", "ffn"])
def test_partial_finetuning_freezes_released_parts(part):
    model = build_model(ModelConfig(arch="vit", embed_dim=32, depth=3, num_heads=2, input_size=(64, 48), freeze=part))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    block_parts = ("attn.", "norm1.") if part == "mhsa" else ("mlp.", "norm2.")
    expected = {n for n, _ in model.named_parameters()
                if n.startswith("backbone.blocks.") and n.split(".", 3)[3].startswith(block_parts)}
    if part == "ffn":
        expected |= {"backbone.pos_embed", "backbone.patch_embed.proj.weight", "backbone.patch_embed.proj.bias"}
    assert frozen == expected
    model.train()
    for blk in model.backbone.blocks:
        frozen_modules = (blk.attn, blk.norm1) if part == "mhsa" else (blk.mlp, blk.norm2)
        other = blk.mlp if part == "mhsa" else blk.attn
        assert all(not m.training for m in frozen_modules) and other.training
    assert model.keypoint_head.training
    model(torch.randn(2, 3, 64, 48)).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n in frozen)


@pytest.mark.parametrize(
    "bad,key",
    [
        (dict(arch="vitpose-x"), "arch"),
        (dict(decoder="fancy"), "decoder"),
        (dict(input_size=(250, 192)), "input_size"),
        (dict(input_size="256by192"), "input_size"),
        (dict(ratio=4), "ratio"),
        (dict(attention="global"), "attention"),
        (dict(shift=True), "shift"),
        (dict(pool=True), "pool"),
        (dict(freeze="all"), "freeze"),
        (dict(arch="vit", embed_dim=32), "depth"),
        (dict(embed_dim=100), "num_heads"),
        (dict(arch="resnet50", ratio=2), "ratio"),
        (dict(arch="resnet50", input_size=(256, 200)), "input_size"),
        (dict(drop_path_rate=1.5), "drop_path_rate"),
        (dict(num_keypoints=0), "num_keypoints"),
    ],
)
def test_config_errors_name_the_key(bad, key):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        ModelConfig(**bad)


def test_config_dict_round_trip_and_unknown_key():
    cfg = ModelConfig.from_dict({"arch": "vitpose-l", "input_size": "384x288", "window_size": [16, 12],
                                 "ratio": 2, "attention": "window", "pool": True})
    assert cfg.input_size == (384, 288) and cfg.window_size == (16, 12) and cfg.heatmap_size == (96, 72)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="^heads: unknown model key"):
        ModelConfig.from_dict({"heads": 12})


def test_input_of_the_wrong_size_is_refused():
    model = build_model(ModelConfig(arch="vit", embed_dim=32, depth=1, num_heads=2, input_size=(64, 48)))
    with pytest.raises(ValueError, match="does not match the model's input_size 64x48"):
        model(torch.randn(1, 3, 64, 64))
