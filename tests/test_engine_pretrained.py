"""The `pretrained` initialisation: format detection lives with the formats (models/checkpoint.py)
and the trainer uses it — an MAE file sets the backbone only, a released file every matching key."""
from __future__ import annotations

import pytest
import torch

from engine_support import make_synthetic, tiny_config
from vitpose.config import RunConfig
from vitpose.engine import trainer
from vitpose.engine.objective import build_model_for_training
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import detect_checkpoint_format, load_pretrained, save_vitpose_checkpoint
from vitpose.utils.errors import CheckpointError

SQUARE = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 64), decoder_channels=16)


def _mae_file(path, seed: int = 3) -> dict:
    """An MAE-format file (`model`: timm encoder keys, class token, final norm) of a tiny ViT."""
    torch.manual_seed(seed)
    backbone = build_model(ModelConfig(**SQUARE)).backbone
    sd = {k: v.clone() for k, v in backbone.state_dict().items() if not k.startswith("last_norm.")}
    sd["cls_token"] = torch.randn(1, 1, 32)
    sd["norm.weight"], sd["norm.bias"] = torch.randn(32), torch.randn(32)
    torch.save({"model": sd, "epoch": 1599}, path)
    return sd


def test_formats_are_detected(tmp_path):
    _mae_file(tmp_path / "mae.pth")
    save_vitpose_checkpoint(build_model(ModelConfig(**SQUARE)), tmp_path / "released.pth")
    legacy = tmp_path / "legacy.pth"  # pre-zip serialisation: cannot be memory-mapped
    torch.save({"state_dict": {}}, legacy, _use_new_zipfile_serialization=False)
    assert detect_checkpoint_format(tmp_path / "mae.pth") == "mae"
    assert detect_checkpoint_format(tmp_path / "released.pth") == "vitpose"
    assert detect_checkpoint_format(legacy) == "vitpose"
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        detect_checkpoint_format(tmp_path / "missing.pth")
    assert trainer.load_pretrained is load_pretrained  # the trainer uses the formats' loader


def test_load_pretrained_dispatches_on_the_format(tmp_path):
    sd = _mae_file(tmp_path / "mae.pth")
    torch.manual_seed(0)
    model = build_model(ModelConfig(**SQUARE))
    head_before = {k: v.clone() for k, v in model.keypoint_head.state_dict().items()}
    report = load_pretrained(model, tmp_path / "mae.pth")
    assert torch.equal(model.backbone.blocks[1].attn.qkv.weight, sd["blocks.1.attn.qkv.weight"])
    assert all(torch.equal(v, head_before[k]) for k, v in model.keypoint_head.state_dict().items())
    assert sorted(report.ignored) == ["cls_token", "norm.bias", "norm.weight"]

    torch.manual_seed(1)
    source = build_model(ModelConfig(**SQUARE))
    save_vitpose_checkpoint(source, tmp_path / "released.pth")
    target = build_model(ModelConfig(**SQUARE))
    load_pretrained(target, tmp_path / "released.pth")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_training_config_pretrained_uses_it(tmp_path):
    data = make_synthetic(tmp_path / "coco", num_train=2, num_val=1)
    sd = _mae_file(tmp_path / "mae.pth")
    cfg = RunConfig.from_dict(tiny_config(data, model={"input_size": [64, 64]},
                                          pretrained=str(tmp_path / "mae.pth")))
    model = build_model_for_training(cfg)
    assert torch.equal(model.backbone.patch_embed.proj.weight, sd["patch_embed.proj.weight"])
    missing = RunConfig.from_dict(tiny_config(data, pretrained=str(tmp_path / "nope.pth")))
    with pytest.raises(CheckpointError, match=r"nope\.pth: pretrained checkpoint not found \(config key 'pretrained'\)"):
        build_model_for_training(missing)
