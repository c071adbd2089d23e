"""Checkpoint formats: released ViTPose files (save / load) and MAE pre-training files (load)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import load_mae_checkpoint, load_vitpose_checkpoint, save_vitpose_checkpoint
from vitpose.utils.errors import CheckpointError

TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=8)


def tiny(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**TINY, **overrides})).eval()


def randomise_batchnorm(model) -> None:
    """Non-trivial running statistics, so that the head's buffers are part of the round trip."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_(1, 0.1)


def test_vitpose_b_export_load_round_trip(tmp_path):
    torch.manual_seed(0)
    source = build_model(ModelConfig(arch="vitpose-b")).eval()
    randomise_batchnorm(source)
    path = tmp_path / "vitpose-b.pth"
    save_vitpose_checkpoint(source, path, meta={"epoch": 210})
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "meta"} and raw["meta"]["epoch"] == 210
    assert raw["meta"]["model_config"]["arch"] == "vitpose-b"
    assert raw["state_dict"]["backbone.pos_embed"].shape == (1, 193, 768)
    assert not [p for p in tmp_path.iterdir() if p.name != "vitpose-b.pth"]  # no temporary left over

    # The target's memory is left uninitialised (meta -> to_empty): every value must come from the file.
    with torch.device("meta"):
        target = build_model(ModelConfig(arch="vitpose-b"))
    target = target.to_empty(device="cpu").eval()
    images = torch.randn(1, 3, 256, 192)
    report = load_vitpose_checkpoint(target, path)
    with torch.no_grad():
        assert torch.equal(target(images), source(images))
    assert report.missing == [] and report.unexpected == []


def test_stray_cls_token_is_ignored_and_folded_pos_embed_is_accepted(tmp_path):
    source = tiny(0)
    randomise_batchnorm(source)
    state = dict(source.state_dict())
    state["backbone.cls_token"] = torch.zeros(1, 1, 32)  # released multi-task files carry one
    pos = state["backbone.pos_embed"]
    state["backbone.pos_embed"] = pos[:, 1:] + pos[:, :1]  # a port that stores the folded (1, N, C)
    path = tmp_path / "released.pth"
    torch.save({"state_dict": state, "meta": {}}, path)

    target = tiny(1)
    report = load_vitpose_checkpoint(target, path)
    assert report.ignored == ["backbone.cls_token"] and report.converted
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), atol=1e-6, rtol=1e-6)


def test_ddp_prefix_is_stripped(tmp_path):
    source = tiny(0)
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target = tiny(1)
    load_vitpose_checkpoint(target, path)
    assert torch.equal(target.backbone.pos_embed, source.backbone.pos_embed)


@pytest.mark.parametrize(
    "other,key,file_shape,model_shape",
    [
        (dict(embed_dim=48), "backbone.pos_embed", [1, 13, 48], [1, 13, 32]),  # another width
        (dict(input_size=(96, 64)), "backbone.pos_embed", [1, 25, 32], [1, 13, 32]),  # another size
        (dict(num_keypoints=14), "keypoint_head.final_layer.weight", [14, 8, 1, 1], [17, 8, 1, 1]),
    ],
)
def test_mismatched_file_fails_naming_key_and_shapes(tmp_path, other, key, file_shape, model_shape):
    path = tmp_path / "other.pth"
    save_vitpose_checkpoint(tiny(0, **other), path)
    target = tiny(1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_vitpose_checkpoint(target, path)
    msg = str(err.value)
    assert str(path) in msg and key in msg and str(file_shape) in msg and str(model_shape) in msg
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())  # untouched


def test_strictness_on_missing_and_unexpected_keys(tmp_path):
    deeper = tmp_path / "deeper.pth"
    save_vitpose_checkpoint(tiny(0, depth=3), deeper)
    with pytest.raises(CheckpointError, match=r"unexpected keys \['backbone\.blocks\.2\."):
        load_vitpose_checkpoint(tiny(1), deeper)
    report = load_vitpose_checkpoint(tiny(1), deeper, strict=False)
    assert report.missing == [] and all(k.startswith("backbone.blocks.2.") for k in report.unexpected)

    partial = tmp_path / "partial.pth"
    state = dict(tiny(0).state_dict())
    state.pop("backbone.last_norm.bias")
    torch.save({"state_dict": state}, partial)
    with pytest.raises(CheckpointError, match=r"missing keys \['backbone\.last_norm\.bias'\]"):
        load_vitpose_checkpoint(tiny(1), partial)
    assert load_vitpose_checkpoint(tiny(1), partial, strict=False).missing == ["backbone.last_norm.bias"]

    simple = tmp_path / "simple.pth"  # a simple-decoder file into a classic model: same key, other shape
    save_vitpose_checkpoint(tiny(0, decoder="simple"), simple)
    with pytest.raises(CheckpointError, match=r"keypoint_head\.final_layer\.weight has shape \[17, 32, 3, 3\]"):
        load_vitpose_checkpoint(tiny(1), simple, strict=False)


def test_unreadable_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_vitpose_checkpoint(tiny(), tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_vitpose_checkpoint(tiny(), garbage)
    wrong = tmp_path / "wrong.pth"
    torch.save({"model": {}}, wrong)
    with pytest.raises(CheckpointError, match="expected a 'state_dict' entry"):
        load_vitpose_checkpoint(tiny(), wrong)


# ---------------------------------------------------------------------------------------- MAE
def write_mae(path, dim=32, depth=2, kernel=14, grid=14, seed=0, extra=None) -> dict:
    """A small MAE-format encoder file (the layout of mae_pretrain_vit_*.pth)."""
    g = torch.Generator().manual_seed(seed)
    sd = {
        "cls_token": torch.randn(1, 1, dim, generator=g),
        "pos_embed": torch.randn(1, 1 + grid * grid, dim, generator=g),
        "patch_embed.proj.weight": torch.randn(dim, 3, kernel, kernel, generator=g),
        "patch_embed.proj.bias": torch.randn(dim, generator=g),
        "norm.weight": torch.randn(dim, generator=g),
        "norm.bias": torch.randn(dim, generator=g),
    }
    for i in range(depth):
        for name, shape in (("norm1", (dim,)), ("attn.qkv", (3 * dim, dim)), ("attn.proj", (dim, dim)),
                            ("norm2", (dim,)), ("mlp.fc1", (4 * dim, dim)), ("mlp.fc2", (dim, 4 * dim))):
            sd[f"blocks.{i}.{name}.weight"] = torch.randn(*shape, generator=g)
            sd[f"blocks.{i}.{name}.bias"] = torch.randn(shape[0], generator=g)
    sd.update(extra or {})
    torch.save({"model": sd}, path)
    return sd


def test_mae_load_resizes_pos_embed_and_pads_patch14(tmp_path):
    path = tmp_path / "mae.pth"
    sd = write_mae(path, extra={"mask_token": torch.zeros(1, 1, 32)})
    model = tiny(0, input_size=(256, 192))  # 16 x 12 grid
    report = load_mae_checkpoint(model, path)
    bb = model.backbone

    # Class slot kept; the 14x14 grid resized to 16x12 like OpenCV's bicubic (half-pixel, a = -0.75,
    # no antialias), an independent implementation of the released F.interpolate call.
    assert torch.equal(bb.pos_embed[0, 0], sd["pos_embed"][0, 0])
    grid = sd["pos_embed"][0, 1:].reshape(14, 14, 32).numpy()
    expected = np.stack([cv2.resize(grid[..., c], (12, 16), interpolation=cv2.INTER_CUBIC) for c in range(32)], -1)
    np.testing.assert_allclose(bb.pos_embed[0, 1:].detach().reshape(16, 12, 32).numpy(), expected, atol=1e-4)

    # 14x14 kernel zero-padded to 16x16, one pixel each side.
    w = bb.patch_embed.proj.weight.detach()
    assert torch.equal(w[:, :, 1:15, 1:15], sd["patch_embed.proj.weight"])
    border = w.clone()
    border[:, :, 1:15, 1:15] = 0
    assert torch.count_nonzero(border) == 0
    assert torch.equal(bb.blocks[1].attn.qkv.weight, sd["blocks.1.attn.qkv.weight"])
    assert torch.equal(bb.blocks[0].mlp.fc2.bias, sd["blocks.0.mlp.fc2.bias"])

    # last_norm is not MAE's norm: it keeps (1, 0).
    assert torch.all(bb.last_norm.weight == 1) and torch.all(bb.last_norm.bias == 0)
    assert sorted(report.ignored) == ["cls_token", "norm.bias", "norm.weight"]
    assert report.unexpected == ["mask_token"]
    assert report.missing[:2] == ["backbone.last_norm.weight", "backbone.last_norm.bias"]
    assert all(k.startswith("keypoint_head.") for k in report.missing[2:]) and len(report.missing) > 2
    assert len(report.converted) == 2
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 256, 192))).all()


def test_mae_patch16_and_same_grid_load_unchanged(tmp_path):
    path = tmp_path / "mae16.pth"
    sd = write_mae(path, kernel=16, grid=4)
    model = tiny(0)  # 64x48 -> 4x3 grid: resized; the backbone alone is accepted too
    report = load_mae_checkpoint(model.backbone, path)
    assert torch.equal(model.backbone.patch_embed.proj.weight, sd["patch_embed.proj.weight"])
    assert report.missing == ["last_norm.weight", "last_norm.bias"]
    square = tiny(0, input_size=(64, 64))
    load_mae_checkpoint(square, path)
    assert torch.equal(square.backbone.pos_embed, sd["pos_embed"])  # 4x4 -> 4x4: copied as is


def test_mae_mismatch_fails_with_key_and_shapes(tmp_path):
    wide = tmp_path / "wide.pth"
    write_mae(wide, dim=48)
    model = tiny(0)
    before = model.backbone.blocks[0].attn.qkv.weight.clone()
    with pytest.raises(CheckpointError, match=r"pos_embed has shape \[1, 197, 48\].*\[1, 13, 32\]"):
        load_mae_checkpoint(model, wide)
    assert torch.equal(model.backbone.blocks[0].attn.qkv.weight, before)

    del_pos = tmp_path / "nopos.pth"
    sd = write_mae(del_pos, dim=48)
    sd.pop("pos_embed")
    torch.save({"model": sd}, del_pos)
    with pytest.raises(CheckpointError, match=r"patch_embed\.proj\.weight has shape \[48, 3, 14, 14\] in the file "
                                              r"but \[32, 3, 16, 16\]"):
        load_mae_checkpoint(model, del_pos)

    deep = tmp_path / "deep.pth"
    write_mae(deep, depth=3)
    with pytest.raises(CheckpointError, match=r"blocks\.2\.norm1\.weight has no place in the model"):
        load_mae_checkpoint(model, deep)

    vitpose_format = tmp_path / "vitpose.pth"
    save_vitpose_checkpoint(model, vitpose_format)
    with pytest.raises(CheckpointError, match="expected a 'model' entry"):
        load_mae_checkpoint(model, vitpose_format)

    resnet = build_model(ModelConfig(arch="resnet50"))
    with pytest.raises(CheckpointError, match="not ResNet"):
        load_mae_checkpoint(resnet, wide)

