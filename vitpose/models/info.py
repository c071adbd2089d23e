"""Parameters and FLOPs of a model, as the paper's tables report them (Tables 5, 6, 9).

FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on the meta device (no weights are
allocated, so ViTPose-H costs nothing). The counter reports FLOPs = 2 x multiply-adds and counts
matmuls, convolutions and scaled_dot_product_attention (so the attention matmuls are included;
mmcv's counter skipped them). Every "gflops" number here is G multiply-adds for one image, the
convention of the paper's tables.

- gflops: the backbone (the paper's GFLOPs column: ViTPose-B 17.1 at 256x192; the classic head adds
  ~1.4 G, reported separately as head_gflops).
- trainable_gflops: multiply-adds of the backbone modules that are trained. This is what reproduces
  Table 6 (17.1 / 10.9 / 6.2): with MHSA frozen only the FFNs (and the patch embedding) train; with
  FFN frozen only the attention layers (qkv, attention matmuls, proj) train. Each module's own
  multiply-adds (its total minus its children's) count when the module has a trainable parameter,
  so the attention matmuls belong to `attn`.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vitpose.models.build import build_model
from vitpose.models.config import ModelConfig


def module_macs(module: nn.Module, *inputs: torch.Tensor) -> tuple[dict[str, int], torch.Tensor]:
    """Run `module(*inputs)` under the FLOP counter -> (multiply-adds per module path, output).

    Paths are `named_modules()` names ("" = `module` itself); each count includes the children.
    """
    root = type(module).__name__
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = module(*inputs)
    macs: dict[str, int] = {}
    for key, per_op in counter.get_flop_counts().items():
        if key == root or key.startswith(root + "."):
            macs[key[len(root) + 1:]] = sum(per_op.values()) // 2
    macs.setdefault("", 0)
    return macs, out


def trainable_macs(module: nn.Module, macs: dict[str, int]) -> int:
    """Sum of each module's own multiply-adds (total minus children) over modules that train."""
    total = 0
    for name, m in module.named_modules():
        own = macs.get(name, 0) - sum(
            macs.get(f"{name}.{child}" if name else child, 0) for child, _ in m.named_children()
        )
        if any(p.requires_grad for p in m.parameters()):
            total += own
    return total


def _millions(params) -> float:
    return round(sum(p.numel() for p in params) / 1e6, 4)


def model_info(cfg: ModelConfig | dict) -> dict:
    """Parameters (M) and multiply-adds (G, batch 1) of the model of `cfg`; see the module docstring."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    with torch.device("meta"):
        model = build_model(cfg)
    model.eval()
    images = torch.zeros(1, 3, *cfg.input_size, device="meta")
    backbone_macs, features = module_macs(model.backbone, images)
    head_macs, heatmaps = module_macs(model.keypoint_head, features)
    return {
        "model": cfg.arch,
        "decoder": cfg.decoder,
        "input": list(cfg.input_size),
        "feature": list(features.shape[-2:]),
        "heatmap": list(heatmaps.shape[-2:]),
        "params_M": _millions(model.parameters()),
        "backbone_params_M": _millions(model.backbone.parameters()),
        "head_params_M": _millions(model.keypoint_head.parameters()),
        "trainable_params_M": _millions(p for p in model.parameters() if p.requires_grad),
        "gflops": round(backbone_macs[""] / 1e9, 4),
        "head_gflops": round(head_macs[""] / 1e9, 4),
        "total_gflops": round((backbone_macs[""] + head_macs[""]) / 1e9, 4),
        "trainable_gflops": round(trainable_macs(model.backbone, backbone_macs) / 1e9, 4),
        "flops_note": "G multiply-adds per image (FlopCounterMode FLOPs / 2, attention matmuls "
                      "included); gflops and trainable_gflops cover the backbone, as the paper's tables",
        "config": cfg.to_dict(),
    }
