"""A checkpoint's architecture told from its weights (released files carry no model config)."""
from __future__ import annotations

import pytest
import torch

from vitpose.models import ModelConfig, build_model
from vitpose.models.architecture import infer_model_config, load_pose_model
from vitpose.models.checkpoint import save_vitpose_checkpoint
from vitpose.utils.errors import CheckpointError

TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=16)


def meta_state(**kw) -> dict[str, torch.Tensor]:
    """The state dict of a model, built on the meta device (shapes only: any size is free)."""
    with torch.device("meta"):
        return build_model(ModelConfig(**kw)).state_dict()


@pytest.mark.parametrize("kw", [
    dict(arch="vitpose-s"), dict(arch="vitpose-b"), dict(arch="vitpose-l", decoder="simple"),
    dict(arch="vitpose-h"), dict(arch="vitpose-b", input_size=(384, 288)),
    dict(arch="vitpose-b", input_size=(256, 256), decoder="simple"),
    dict(arch="vitpose-b", ratio=2), dict(arch="resnet50"), dict(arch="resnet152", decoder="simple"),
    dict(arch="vitpose-b", num_keypoints=14, decoder_channels=128),
])
def test_released_weights_give_back_their_architecture(kw):
    assert infer_model_config(meta_state(**kw)) == ModelConfig(**kw)


def test_folded_position_embedding_still_gives_the_input_size():
    sd = meta_state(arch="vitpose-b", input_size=(384, 288))
    sd["backbone.pos_embed"] = torch.empty(1, 24 * 18, 768, device="meta")  # (1, N, C): no class slot
    assert infer_model_config(sd).input_size == (384, 288)


def test_custom_vit_needs_its_heads_and_overrides_win():
    sd = meta_state(**TINY)
    with pytest.raises(CheckpointError, match=r"tiny\.pth: .*width 32 and depth 2.*--heads"):
        infer_model_config(sd, path="tiny.pth")
    assert infer_model_config(sd, overrides={"num_heads": 2}) == ModelConfig(**TINY)
    # another arch drops the inferred custom widths; the given input size wins over the inferred one
    cfg = infer_model_config(meta_state(arch="vitpose-b"), overrides={"arch": "vitpose-l", "input_size": "384x288"})
    assert (cfg.arch, cfg.embed_dim, cfg.input_size) == ("vitpose-l", None, (384, 288))


def test_not_a_pose_model_is_refused_naming_the_file():
    with pytest.raises(CheckpointError, match=r"x\.pth: no ViT .* or ResNet"):
        infer_model_config({"blocks.0.attn.qkv.weight": torch.zeros(3, 1)}, path="x.pth")
    sd = meta_state(arch="vitpose-b")
    sd["backbone.blocks.0.mlp.experts.0.weight"] = torch.empty(1, device="meta")
    with pytest.raises(CheckpointError, match="ViTPose\\+"):
        infer_model_config(sd, path="plus.pth")
    del sd["backbone.blocks.0.mlp.experts.0.weight"], sd["keypoint_head.final_layer.weight"]
    with pytest.raises(CheckpointError, match="final_layer"):
        infer_model_config(sd, path="nohead.pth")


def test_load_pose_model_uses_the_saved_config_and_drops_extra_decoders(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY)).eval()
    state = dict(model.state_dict())
    state["associate_keypoint_heads.0.final_layer.weight"] = torch.zeros(14, 32, 1, 1)
    path = tmp_path / "multi.pth"
    torch.save({"state_dict": state, "meta": {"model_config": model.cfg.to_dict()}}, path)
    loaded, cfg, report = load_pose_model(path)
    assert cfg == model.cfg and report.ignored == ["associate_keypoint_heads.0.final_layer.weight"]
    images = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


def test_load_pose_model_of_another_architecture_names_the_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    save_vitpose_checkpoint(build_model(ModelConfig(**TINY)), path)
    with pytest.raises(CheckpointError, match=r"tiny\.pth: .* has shape .* in the file"):
        load_pose_model(path, {"arch": "vitpose-s"})
    mae = tmp_path / "mae.pth"
    torch.save({"model": {"pos_embed": torch.zeros(1, 5, 8)}}, mae)
    with pytest.raises(CheckpointError, match=r"mae\.pth: an MAE pre-training checkpoint"):
        load_pose_model(mae)
