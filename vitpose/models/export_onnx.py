"""ONNX export of a pose model (images -> heatmaps) with a dynamic batch axis, checked with onnxruntime.

The graph is the model's forward only: input `images` (B, 3, H, W) float32, ImageNet-normalised RGB
crops of the model's input size; output `heatmaps` (B, K, H/4, W/4). Cropping, the flip test and
decoding stay outside (they are cheap, and a deployment usually has its own). The model's config
(`vitpose_model_config`, JSON) and the keypoint names (`vitpose_keypoints`) are in the file's
metadata.

torch's dynamo exporter (torch.export + onnxscript) is used: it keeps the batch dimension symbolic
where the TorchScript tracer bakes the example's batch into reshapes. The example batch is 2, not 1,
because torch.export specialises dimensions of size 1. A model over 2 GB (ViTPose-H) is saved with
its weights in `<file>.data` beside it, as ONNX requires.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from vitpose.utils.errors import OutputError
from vitpose.utils.io import describe_os_error

INPUT_NAME, OUTPUT_NAME = "images", "heatmaps"
EXAMPLE_BATCH = 2


class ExportMismatch(Exception):
    """onnxruntime's heatmaps differ from PyTorch's by more than the tolerance."""


def export_onnx(model: torch.nn.Module, out_path: str | os.PathLike, *, keypoint_names=None,
                opset: int | None = None) -> Path:
    """Write the model (eval mode, CPU, float32) to `out_path` with a dynamic batch axis.

    The file (and `<name>.data` when there is one) is written in a temporary directory beside it
    and moved into place, the .onnx last: an interrupted export leaves no half-written model.
    """
    out_path = Path(out_path)
    model = model.float().cpu().eval()
    h, w = model.cfg.input_size
    example = torch.randn(EXAMPLE_BATCH, 3, h, w)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes={INPUT_NAME: {0: batch}},
                                    opset_version=opset, verbose=False)
    program.model.metadata_props["vitpose_model_config"] = json.dumps(model.cfg.to_dict())
    if keypoint_names is not None:
        program.model.metadata_props["vitpose_keypoints"] = json.dumps(list(keypoint_names))
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out_path.name}.", dir=out_path.parent) as tmp:
            program.save(Path(tmp) / out_path.name)
            files = sorted(Path(tmp).iterdir(), key=lambda p: p.suffix == ".onnx")  # the model file last
            for f in files:
                os.replace(f, out_path.parent / f.name)
    except OSError as exc:
        raise OutputError(f"{out_path}: cannot write: {describe_os_error(exc)}") from exc
    return out_path


def check_onnx(model: torch.nn.Module, onnx_path: str | os.PathLike, *, batches=(1, 3),
               atol: float = 1e-4, seed: int = 0) -> dict:
    """Heatmaps of onnxruntime (CPU) against PyTorch's on random inputs of each batch size.

    Batches other than the export's example prove the batch axis is dynamic. Returns
    {"batches", "max_abs_diff", "atol"}; raises ExportMismatch when the difference exceeds `atol`.
    """
    import onnxruntime as ort

    model = model.float().cpu().eval()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    h, w = model.cfg.input_size
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in batches:
        images = torch.randn(b, 3, h, w, generator=gen)
        with torch.no_grad():
            expected = model(images).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
        if got.shape != expected.shape:
            raise ExportMismatch(f"{onnx_path}: batch {b}: onnxruntime gives heatmaps {got.shape}, "
                                 f"PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > atol:
        raise ExportMismatch(f"{onnx_path}: onnxruntime's heatmaps differ from PyTorch's by {worst:.3g} "
                             f"(tolerance {atol:g})")
    return {"batches": list(batches), "max_abs_diff": worst, "atol": atol}


def remove_export(path: str | os.PathLike) -> None:
    """Delete an exported model and its external data file (`<name>.data`, onnxscript's name), if any."""
    for p in (Path(path), Path(f"{path}.data")):
        if p.is_file():
            p.unlink()

