"""An optional person detector for `stages.predict`: a torchvision detection model with local weights.

The model is built with `weights=None, weights_backbone=None` (nothing is ever downloaded) and its
state dict read from a file the user gives (torchvision's released `.pth` files are plain state
dicts; `{"model": ...}` and `{"state_dict": ...}` wrappers are accepted too). Only class 1 (person in
torchvision's COCO labelling) with a score of at least the threshold is kept. An image where nothing
passes gets no boxes: the caller decides what that means (stages.predict: no pose for that image).
"""
from __future__ import annotations

import os

import numpy as np
import torch
from tqdm import tqdm

from vitpose.data.image_io import read_image_bgr
from vitpose.models.checkpoint import read_torch_file
from vitpose.utils.errors import CheckpointError, ConfigError

DETECTORS = ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
             "fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
             "fcos_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large")
PERSON_LABEL = 1


def load_detector(path: str | os.PathLike, arch: str = "fasterrcnn_resnet50_fpn") -> torch.nn.Module:
    """The torchvision detector `arch` (eval mode) with the weights of `path`; errors name the file."""
    import torchvision.models.detection as detection

    if arch not in DETECTORS:
        raise ConfigError(f"--detector-arch: expected one of {', '.join(DETECTORS)}, got {arch!r}")
    model = getattr(detection, arch)(weights=None, weights_backbone=None)
    state = read_torch_file(path, "person detector")
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict of {arch}, got {type(state).__name__}")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{path}: not the weights of torchvision's {arch} (--detector-arch): missing "
                              f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    return model.eval()


@torch.no_grad()
def detect_people(detector: torch.nn.Module, paths: list, threshold: float, device: torch.device | str,
                  progress: bool = True) -> list[np.ndarray]:
    """Person boxes of each image: one (n, 5) float32 array `(x1, y1, x2, y2, score)` per path (n may be 0)."""
    detector.to(device)
    boxes = []
    for path in tqdm(paths, desc="detect", unit="image", disable=not progress, dynamic_ncols=True):
        rgb = read_image_bgr(path)[:, :, ::-1].copy()
        tensor = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).to(device)   # (3, H, W) in [0, 1]
        out = detector([tensor])[0]
        keep = (out["labels"] == PERSON_LABEL) & (out["scores"] >= threshold)
        found = torch.cat([out["boxes"][keep], out["scores"][keep, None]], dim=1)
        boxes.append(found.cpu().numpy().astype(np.float32))
    return boxes
