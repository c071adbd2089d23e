"""SimpleBaseline backbones (paper Table 2): timm ResNet-50 / ResNet-152, features at 1/32.

timm's ResNet with `num_classes=0, global_pool=""` returns the layer4 map (B, 2048, H/32, W/32) from
its forward; its module names (conv1, bn1, layer1..4) are those of torchvision and mmpose's ResNet.
Never downloads weights (`pretrained=False`): ImageNet initialisation, if wanted, is loaded separately.
"""
from __future__ import annotations

import timm
import torch
from torch import nn

from vitpose.models.presets import RESNET_ARCHS

def build_resnet_backbone(arch: str) -> nn.Module:
    """arch in RESNET_ARCHS -> nn.Module mapping (B, 3, H, W) to (B, C, H/32, W/32).

    C = `resnet_channels(arch)`: 2048 for ResNet-50/152, less for the smoke stand-ins.
    """
    name, kwargs = RESNET_ARCHS[arch]
    return timm.create_model(name, pretrained=False, num_classes=0, global_pool="", **kwargs)


def resnet_channels(arch: str) -> int:
    """Output channels of a SimpleBaseline backbone (its layer4 width)."""
    with torch.device("meta"):
        return build_resnet_backbone(arch).num_features
