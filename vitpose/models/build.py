"""TopDownPoseModel = backbone + keypoint_head; build_model(cfg) assembles it from a ModelConfig."""
from __future__ import annotations

import torch
from torch import nn

from vitpose.models.config import ModelConfig
from vitpose.models.decoders import build_decoder
from vitpose.models.resnet import build_resnet_backbone, resnet_channels
from vitpose.models.vit import ViTPoseBackbone
from vitpose.models.vitae import ViTAEBackbone


class TopDownPoseModel(nn.Module):
    """images (B, 3, H, W) -> heatmaps (B, K, H/4, W/4).

    `forward_features` is kept apart from the head so that later variants (one decoder per dataset)
    can reuse it. With `cfg.knowledge_token` (a distilled student, paper Eq. 6) the model holds a
    `knowledge_token` (models/token.py) whose token enters the backbone in front of the patch tokens:
    it is part of the model at inference as in training.
    """

    def __init__(self, cfg: ModelConfig, backbone: nn.Module, keypoint_head: nn.Module,
                 knowledge_token: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.keypoint_head = keypoint_head
        self.heatmap_size = cfg.heatmap_size
        self.knowledge_token = knowledge_token

    def forward_features(self, images: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """images: (B, 3, H, W) -> features (B, C, H/s, W/s), s = cfg.feature_stride.

        prefix: (1, T, C) extra tokens for a ViT backbone (a teacher's token during token training);
        the model's own knowledge token, if any, comes first."""
        if self.knowledge_token is not None:
            own = self.knowledge_token()
            prefix = own if prefix is None else torch.cat([own, prefix], dim=1)
        if prefix is None:
            return self.backbone(images)
        return self.backbone(images, prefix=prefix)

    def forward(self, images: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """images: (B, 3, H, W) -> heatmaps (B, K, H/4, W/4)."""
        return self.keypoint_head(self.forward_features(images, prefix))


def training_memory_format(model: nn.Module) -> torch.memory_format:
    """How to lay out the model's 4-D weights (and so its activations) for training.

    channels_last for a convolutional (ResNet) backbone: oneDNN's CPU convolutions, like cuDNN's under
    mixed precision, are faster in it (measured per smoke training step on one CPU thread: ResNet
    stand-ins 20-29% faster); a ViT's few convolutions gain nothing. The results differ only in
    rounding (another summation order)."""
    model = getattr(model, "module", model)  # DDP
    if isinstance(model, TopDownPoseModel) and not model.cfg.is_vit:
        return torch.channels_last
    return torch.contiguous_format


def build_backbone(cfg: ModelConfig) -> tuple[nn.Module, int]:
    """The backbone of `cfg` and its output channels."""
    if not cfg.is_vit:
        return build_resnet_backbone(cfg.arch), resnet_channels(cfg.arch)
    a = cfg.vit_args()
    backbone = (ViTAEBackbone if cfg.is_vitae else ViTPoseBackbone)(
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
    token = None
    if cfg.knowledge_token is not None:
        from vitpose.models.token import KnowledgeToken

        token = KnowledgeToken(cfg.knowledge_token, channels)
    return TopDownPoseModel(cfg, backbone, head, token)
