"""Model presets as data: the architecture of ViTPose-S/B/L/H (REFERENCE §1) and the SimpleBaseline ResNets.

Architecture only. The training hyper-parameters that go with each size (layer decay, drop path, lr,
batch: paper Table 1) live in params.yaml `hyperparameters` and nowhere else; its comments say where
the paper and the released configs differ (ViTPose-H layer decay: 0.80 in Table 1, 0.85 released).
ViTPose-S is not in the paper's tables; its widths come from the released ViTPose-S config (12 heads
of width 32). ViTPose-G's ViTAE-G backbone (models/vitae.py) has no published widths: ours are ViT-g's
(README.md, "Choices the paper leaves open").
"""
from __future__ import annotations

VIT_PRESETS: dict[str, dict] = {
    "vitpose-s": dict(embed_dim=384, depth=12, num_heads=12),
    "vitpose-b": dict(embed_dim=768, depth=12, num_heads=12),
    "vitpose-l": dict(embed_dim=1024, depth=24, num_heads=16),
    "vitpose-h": dict(embed_dim=1280, depth=32, num_heads=16),
}

# ViTAE backbones (a ViT whose blocks add a parallel convolution branch, models/vitae.py).
VITAE_PRESETS: dict[str, dict] = {
    "vitpose-g": dict(embed_dim=1408, depth=40, num_heads=16),
}

# The SimpleBaseline backbones (paper Table 2) as timm models: (timm name, constructor arguments);
# features at 1/32. ResNet-50/152: 2048 channels. The rest are smaller stand-ins for the smoke scale:
# resnet10t / resnet18 (512 channels) and "tiny" ones, timm's ResNet-18 / ResNet-34 layouts with a
# quarter of the widths (stages of 16, 32, 64, 128 channels; a deep stem of 8, 8, 16 channels, since
# timm's plain stem is 64 wide whatever the stages): 32 and 60 M multiply-adds at 128x96, the order of
# the smoke ViTs', where resnet10t takes 270 M.
RESNET_ARCHS: dict[str, tuple[str, dict]] = {
    "resnet50": ("resnet50", {}),
    "resnet152": ("resnet152", {}),
    "resnet10t": ("resnet10t", {}),
    "resnet18": ("resnet18", {}),
    "resnet18-tiny": ("resnet18", {"channels": (16, 32, 64, 128), "stem_width": 8, "stem_type": "deep"}),
    "resnet34-tiny": ("resnet34", {"channels": (16, 32, 64, 128), "stem_width": 8, "stem_type": "deep"}),
}

CUSTOM_VIT = "vit"  # a ViT whose embed_dim / depth / num_heads are all given (tiny smoke models)
CUSTOM_VITAE = "vitae"  # the same for a ViTAE (the smoke stand-in of ViTPose-G)

ARCHS = (*VIT_PRESETS, *VITAE_PRESETS, *RESNET_ARCHS, CUSTOM_VIT, CUSTOM_VITAE)
