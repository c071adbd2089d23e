"""TopDownPoseModel = backbone + keypoint_head; build_model(cfg) assembles it from a ModelConfig."""
from __future__ import annotations

import torch
from torch import nn

from vitpose.models.config import ModelConfig
from vitpose.models.decoders import build_decoder
from vitpose.models.resnet import build_resnet_backbone, resnet_channels
from vitpose.models.vit import ViTPoseBackbone


class TopDownPoseModel(nn.Module):
    """images (B, 3, H, W) -> heatmaps (B, K, H/4, W/4).

    `forward_features` is kept apart from the head so that later variants (a knowledge token in the
    backbone, one decoder per dataset) can reuse it.
    """

    def __init__(self, cfg: ModelConfig, backbone: nn.Module, keypoint_head: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.keypoint_head = keypoint_head
        self.heatmap_size = cfg.heatmap_size

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, H, W) -> features (B, C, H/s, W/s), s = cfg.feature_stride."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, H, W) -> heatmaps (B, K, H/4, W/4)."""
        return self.keypoint_head(self.forward_features(images))


def build_backbone(cfg: ModelConfig) -> tuple[nn.Module, int]:
    """The backbone of `cfg` and its output channels."""
    if not cfg.is_vit:
        return build_resnet_backbone(cfg.arch), resnet_channels(cfg.arch)
    a = cfg.vit_args()
    backbone = ViTPoseBackbone(
        img_size=cfg.input_size,
        embed_dim=a["embed_dim"],
        depth=a["depth"],
        num_heads=a["num_heads"],
        ratio=cfg.ratio,
        drop_path_rate=a["drop_path_rate"],
        attention=cfg.attention,
        window_size=cfg.window_size,
        shift=cfg.shift,
        pool=cfg.pool,
        freeze=cfg.freeze,
    )
    return backbone, a["embed_dim"]


def build_model(cfg: ModelConfig) -> TopDownPoseModel:
    """Build on the current default device (use `with torch.device("meta"):` for shapes and FLOPs)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    backbone, channels = build_backbone(cfg)
    head = build_decoder(cfg.decoder, channels, cfg.num_keypoints, cfg.feature_stride, cfg.decoder_channels)
    return TopDownPoseModel(cfg, backbone, head)
