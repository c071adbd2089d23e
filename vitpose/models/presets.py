"""Model presets as data: ViTPose-S/B/L/H (paper Table 1, REFERENCE §1) and the SimpleBaseline ResNets.

Layer decay and drop path are the training hyper-parameters that go with each backbone size. Paper
Table 1 lists ViTPose-H with layer decay 0.80; the released ViTPose-H config uses 0.85. We follow the
released config (its checkpoints produced the paper's numbers), as REFERENCE.md asks for numerics.
ViTPose-S is not in the paper's tables; its values come from the released ViTPose-S config (12 heads
of width 32).
"""
from __future__ import annotations

VIT_PRESETS: dict[str, dict] = {
    "vitpose-s": dict(embed_dim=384, depth=12, num_heads=12, drop_path_rate=0.1, layer_decay=0.8),
    "vitpose-b": dict(embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.3, layer_decay=0.75),
    "vitpose-l": dict(embed_dim=1024, depth=24, num_heads=16, drop_path_rate=0.5, layer_decay=0.8),
    # paper Table 1: layer decay 0.80; released config: 0.85 (used here, see module docstring)
    "vitpose-h": dict(embed_dim=1280, depth=32, num_heads=16, drop_path_rate=0.55, layer_decay=0.85),
}

# timm model names of the SimpleBaseline backbones (paper Table 2); features at 1/32, 2048 channels.
RESNET_ARCHS: dict[str, str] = {"resnet50": "resnet50", "resnet152": "resnet152",
                                 # small stand-ins for the smoke scale (512 channels at 1/32)
                                 "resnet10t": "resnet10t", "resnet18": "resnet18"}

CUSTOM_VIT = "vit"  # a ViT whose embed_dim / depth / num_heads are all given (tiny smoke models)

ARCHS = (*VIT_PRESETS, *RESNET_ARCHS, CUSTOM_VIT)
