"""Released format <-> transformers' VitPose: the same heatmaps after each direction (nothing downloaded)."""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")
from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation  # noqa: E402

from stages._cli import run_main  # noqa: E402
from stages.convert import main as convert_main  # noqa: E402
from vitpose.models import ModelConfig, build_model  # noqa: E402
from vitpose.models.architecture import load_pose_model  # noqa: E402
from vitpose.models.checkpoint import load_vitpose_checkpoint, save_vitpose_checkpoint  # noqa: E402
from vitpose.models.hf_convert import convert_hf_to_released, convert_released_to_hf  # noqa: E402
from vitpose.utils.errors import CheckpointError  # noqa: E402

INPUT = (64, 48)
# transformers' classic decoder has 256 channels, so the tiny model here has them too
TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=INPUT, decoder_channels=256)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every weight and statistic away from its initial value (LayerNorms at (1, 0) or zero biases would
    hide swapped or dropped tensors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                values = torch.randn(tensor.shape, generator=gen) * 0.2
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)


def heatmaps(model, images) -> torch.Tensor:
    with torch.no_grad():
        out = model(images)
    return getattr(out, "heatmaps", out)


@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_transformers_to_released_same_heatmaps(tmp_path, decoder):
    # transformers' defaults, layer_norm_eps 1e-12 included: the conversion notes the epsilon
    backbone = VitPoseBackboneConfig(image_size=list(INPUT), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, out_indices=[2])
    hf = VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, num_labels=17,
                                                use_simple_decoder=decoder == "simple")).eval()
    randomise(hf, 1)
    hf.save_pretrained(tmp_path / "hf")
    notes = convert_hf_to_released(tmp_path / "hf", tmp_path / "released.pth")
    assert any("layer_norm_eps" in n for n in notes)

    ours, cfg, _ = load_pose_model(tmp_path / "released.pth")
    assert cfg == ModelConfig(**{**TINY, "decoder": decoder})
    images = torch.randn(2, 3, *INPUT)
    expected = heatmaps(hf, images)
    assert expected.abs().max() > 0.1  # non-trivial heatmaps: the tolerance below means something
    assert (heatmaps(ours, images) - expected).abs().max() < 1e-4
    # what stages.evaluate does: the run's model, loaded strictly
    model = build_model(cfg).eval()
    load_vitpose_checkpoint(model, tmp_path / "released.pth")
    assert torch.equal(heatmaps(model, images), heatmaps(ours, images))


@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_released_to_transformers_same_heatmaps(tmp_path, decoder):
    torch.manual_seed(0)
    ours = build_model(ModelConfig(**{**TINY, "decoder": decoder})).eval()
    randomise(ours, 2)
    save_vitpose_checkpoint(ours, tmp_path / "model.pth")
    assert convert_released_to_hf(tmp_path / "model.pth", tmp_path / "hf") == []
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == ["config.json", "model.safetensors"]

    hf = VitPoseForPoseEstimation.from_pretrained(tmp_path / "hf").eval()
    assert hf.config.use_simple_decoder == (decoder == "simple")
    images = torch.randn(3, 3, *INPUT)
    expected = heatmaps(ours, images)
    assert expected.abs().max() > 0.1
    assert (heatmaps(hf, images) - expected).abs().max() < 1e-4


@pytest.mark.parametrize("change, reason", [
    (dict(decoder_channels=16), "classic decoder of 16 channels"),
    (dict(arch="resnet18", embed_dim=None, depth=None, num_heads=None, input_size=(64, 64)), "resnet18 backbone"),
    (dict(ratio=2), "ratio 2"),
    (dict(attention="window", window_size=(2, 2)), "attention 'window'"),
])
def test_variants_transformers_lacks_are_refused(tmp_path, change, reason):
    torch.manual_seed(0)
    path = tmp_path / "variant.pth"
    save_vitpose_checkpoint(build_model(ModelConfig(**{**TINY, **change})), path)
    with pytest.raises(CheckpointError, match=rf"variant\.pth: cannot be converted .*{reason}"):
        convert_released_to_hf(path, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_vitpose_plus_and_missing_config_are_refused(tmp_path):
    backbone = VitPoseBackboneConfig(image_size=list(INPUT), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, out_indices=[2], num_experts=2, part_features=8)
    VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, num_labels=17)).save_pretrained(tmp_path / "plus")
    with pytest.raises(CheckpointError, match=r"plus/config\.json: .*num_experts 2"):
        convert_hf_to_released(tmp_path / "plus", tmp_path / "out.pth")
    (tmp_path / "plus" / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"plus/config\.json: not found"):
        convert_hf_to_released(tmp_path / "plus", tmp_path / "out.pth")
    assert not (tmp_path / "out.pth").exists()


def test_convert_command_both_ways_and_its_errors(tmp_path, capsys):
    torch.manual_seed(0)
    save_vitpose_checkpoint(build_model(ModelConfig(**{**TINY, "decoder": "simple"})), tmp_path / "m.pth")
    assert run_main(convert_main, ["--to", "hf", "--checkpoint", str(tmp_path / "m.pth"), "--out", str(tmp_path / "hf")]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == []
    assert run_main(convert_main, ["--to", "released", "--checkpoint", str(tmp_path / "hf"),
                                   "--out", str(tmp_path / "back.pth")]) == 0
    capsys.readouterr()
    a, b = load_pose_model(tmp_path / "m.pth")[0], load_pose_model(tmp_path / "back.pth")[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    assert run_main(convert_main, ["--to", "hf", "--checkpoint", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "x")]) == 2
    assert "bad.pth: the checkpoint cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
