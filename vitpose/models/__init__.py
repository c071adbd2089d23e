"""ViTPose models: plain ViT backbone (+ Table 5 attention variants), classic / simple decoders,
SimpleBaseline ResNets, checkpoint formats, FLOPs and throughput.

    from vitpose.models import ModelConfig, build_model
    model = build_model(ModelConfig(arch="vitpose-b", decoder="classic", input_size=(256, 192)))
    heatmaps = model(images)  # (B, 3, H, W) -> (B, K, H/4, W/4)

The names are imported lazily: reading and validating a configuration (the registry, Snakemake's
parsing of the DAG) must not pay for importing torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ModelConfig": "vitpose.models.config",
    "parse_size": "vitpose.models.config",
    "VIT_PRESETS": "vitpose.models.presets",
    "TopDownPoseModel": "vitpose.models.build",
    "build_model": "vitpose.models.build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vitpose.models' has no attribute {name!r}")
