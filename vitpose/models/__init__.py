"""ViTPose models: plain ViT backbone (+ Table 5 attention variants), classic / simple decoders,
SimpleBaseline ResNets, checkpoint formats, FLOPs and throughput.

    from vitpose.models import ModelConfig, build_model
    model = build_model(ModelConfig(arch="vitpose-b", decoder="classic", input_size=(256, 192)))
    heatmaps = model(images)  # (B, 3, H, W) -> (B, K, H/4, W/4)
"""
from vitpose.models.build import TopDownPoseModel, build_model
from vitpose.models.config import ModelConfig, parse_size
from vitpose.models.presets import VIT_PRESETS

__all__ = ["ModelConfig", "TopDownPoseModel", "VIT_PRESETS", "build_model", "parse_size"]
