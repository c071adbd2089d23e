"""The two decoders of ViTPose (paper §3.1, Fig. 2c-d), with the released module names.

Heatmaps are always 1/4 of the input, whatever the backbone's feature stride s (16 for ViT, 8 for
ViT at ratio 2, 32 for ResNet). The paper only describes s = 16, so for other strides:
- classic: log2(s / 4) deconvolution blocks (each x2): 2 at 1/16 (paper), 1 at 1/8, 3 at 1/32 (exactly
  SimpleBaseline's head for ResNet);
- simple: ReLU -> bilinear x(s / 4) -> 3x3 conv: x4 at 1/16 (paper), x2 at 1/8, x8 at 1/32.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vitpose.models import cpu_bf16


def upsample_factor(feature_stride: int) -> int:
    """Upsampling from features at 1/feature_stride to heatmaps at 1/4."""
    if feature_stride < 4 or feature_stride % 4 or (feature_stride // 4) & (feature_stride // 4 - 1):
        raise ValueError(f"feature stride must be 4 times a power of two, got {feature_stride}")
    return feature_stride // 4


class ClassicDecoder(nn.Module):
    """n x [ConvTranspose2d(k4, s2, p1, no bias) -> BatchNorm2d -> ReLU] -> Conv2d 1x1 (Eq. 2).

    `deconv_layers` indices 0, 1, 3, 4 (, 6, 7) are the released keys; init N(0, 0.001), BN (1, 0).
    """

    def __init__(self, in_channels: int, num_keypoints: int, feature_stride: int = 16, channels: int = 256) -> None:
        super().__init__()
        num_blocks = int(math.log2(upsample_factor(feature_stride)))
        layers: list[nn.Module] = []
        for i in range(num_blocks):
            layers += [
                cpu_bf16.ConvTranspose2d(in_channels if i == 0 else channels, channels, kernel_size=4,
                                         stride=2, padding=1, output_padding=0, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = cpu_bf16.Conv2d(channels if num_blocks else in_channels, num_keypoints,
                                           kernel_size=1)
        _init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> heatmaps (B, K, h * 2^n, w * 2^n)."""
        return self.final_layer(self.deconv_layers(x))


class SimpleDecoder(nn.Module):
    """ReLU -> bilinear upsampling (align_corners False) -> Conv2d 3x3 (Eq. 3).

    Released order: ReLU before the upsampling (the paper's Eq. 3 writes it the other way; the two
    differ, and the released checkpoints were trained with this order).
    """

    def __init__(self, in_channels: int, num_keypoints: int, feature_stride: int = 16) -> None:
        super().__init__()
        self.scale_factor = upsample_factor(feature_stride)
        self.final_layer = cpu_bf16.Conv2d(in_channels, num_keypoints, kernel_size=3, padding=1)
        _init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, h, w) -> heatmaps (B, K, h * f, w * f)."""
        x = F.interpolate(F.relu(x), scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        return self.final_layer(x)


def _init_head(head: nn.Module) -> None:
    for m in head.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_decoder(kind: str, in_channels: int, num_keypoints: int, feature_stride: int, channels: int = 256) -> nn.Module:
    if kind == "classic":
        return ClassicDecoder(in_channels, num_keypoints, feature_stride, channels)
    if kind == "simple":
        return SimpleDecoder(in_channels, num_keypoints, feature_stride)
    raise ValueError(f"decoder: expected 'classic' or 'simple', got {kind!r}")
