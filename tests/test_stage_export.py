"""stages.export: ONNX with a dynamic batch, onnxruntime within 1e-4 of PyTorch, errors naming the file."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from stages._cli import run_main  # noqa: E402
from stages.export import main as export_main  # noqa: E402
from vitpose.models import ModelConfig, build_model  # noqa: E402
from vitpose.models.checkpoint import save_vitpose_checkpoint  # noqa: E402
from vitpose.models.export_onnx import ExportMismatch, check_onnx  # noqa: E402

TINY = dict(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=16)


def tiny(decoder: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(**TINY, decoder=decoder)).eval()
    with torch.no_grad():  # the head's N(0, 0.001) init gives heatmaps near 0: any tolerance would pass
        for p in model.keypoint_head.parameters():
            p.normal_(0, 0.2)
    return model


@pytest.mark.parametrize("decoder", ["classic", "simple"])
def test_onnx_export_matches_pytorch_at_any_batch(tmp_path, capsys, decoder):
    model = tiny(decoder)
    save_vitpose_checkpoint(model, tmp_path / "m.pth")
    assert run_main(export_main, ["--checkpoint", str(tmp_path / "m.pth"), "--format", "onnx"]) == 0
    report = json.loads(capsys.readouterr().out)
    onnx_file = tmp_path / "m.onnx"
    assert report["out"] == str(onnx_file) and report["check"]["max_abs_diff"] < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pth"]  # no temporary left

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "images" and isinstance(session.get_inputs()[0].shape[0], str)
    images = torch.randn(5, 3, 64, 48)
    with torch.no_grad():
        expected = model(images).numpy()
    got = session.run(["heatmaps"], {"images": images.numpy()})[0]
    assert np.abs(expected).max() > 0.1 and got.shape == (5, 17, 16, 12)
    assert np.abs(got - expected).max() < 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["vitpose_model_config"])["decoder"] == decoder
    assert json.loads(meta["vitpose_keypoints"])[0] == "nose"

    # the check is a real comparison: other weights than the exported ones fail it
    with pytest.raises(ExportMismatch, match=r"m\.onnx: onnxruntime's heatmaps differ"):
        check_onnx(tiny(decoder, seed=1), onnx_file)


def test_export_errors_name_the_checkpoint(tmp_path, capsys):
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 10)
    assert run_main(export_main, ["--checkpoint", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "bad.pth: the checkpoint cannot be read" in capsys.readouterr().err
    save_vitpose_checkpoint(tiny("simple"), tmp_path / "m.pth")
    assert run_main(export_main, ["--checkpoint", str(tmp_path / "m.pth"), "--model", "vitpose-b",
                                  "--out", str(tmp_path / "x.onnx")]) == 2
    assert "m.pth: backbone.pos_embed has shape" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
