"""Checkpoint formats: the released ViTPose format (load + save) and MAE pre-training files (load).

ViTPose format (REFERENCE §2): a dict with `state_dict` (keys `backbone.*`, `keypoint_head.*`, the
position embedding as (1, N+1, C)) and `meta`. Our module names are the released keys, so the
model's own state_dict is the format; loading only has to tolerate the released files' quirks:
a stray `backbone.cls_token` (multi-task files) is ignored, a folded (1, N, C) position embedding
(as some ports store it) is put back into the (1, N+1, C) layout with a zero class slot, and a
`module.` prefix (DDP) is stripped.

MAE format: a dict with `model` holding a timm-style ViT encoder (`cls_token`, `pos_embed` (1, 197, C)
sin-cos, `patch_embed.proj`, `blocks.*`, `norm.*`). The class token and the final `norm` are dropped
(ViTPose's last_norm starts from (1, 0)); the 14x14 position grid is resized bicubically
(align_corners False, no antialias: the released resize) to the backbone's grid, keeping the class
slot; a patch-14 kernel (ViT-H) is zero-padded to 16x16, one pixel each side (paper §3.2).

Every check runs before any weight is copied, so a failed load leaves the model untouched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from torch import nn

from vitpose.models.vit import PATCH_SIZE, ViTPoseBackbone
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import atomic_save

MAE_DROPPED = ("cls_token", "norm.weight", "norm.bias")
STRAY_KEYS = ("backbone.cls_token",)


@dataclass
class LoadReport:
    """What a load did. Key names are those of the module the file was loaded into."""

    path: str
    missing: list[str] = field(default_factory=list)  # keys of the model the file did not set
    unexpected: list[str] = field(default_factory=list)  # keys of the file that were not used
    ignored: list[str] = field(default_factory=list)  # keys dropped on purpose (format rules)
    converted: list[str] = field(default_factory=list)  # notes on resized / padded tensors


# ---------------------------------------------------------------------------------------- reading
def _read(path: str | os.PathLike) -> dict:
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        # weights_only: a checkpoint is data, never code to execute.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({exc})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    return obj


def _state_dict_under(obj: dict, key: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    sd = obj.get(key)
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: expected a '{key}' entry holding the weights, found keys {sorted(obj)[:8]}")
    if all(k.startswith("module.") for k in sd):  # saved from a DDP wrapper
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def _check_shapes(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], path, hint: str) -> None:
    """CheckpointError on the first key (in the model's order) whose shapes differ."""
    for key, tensor in target.items():
        if key in source and tuple(source[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {list(source[key].shape)} in the file but "
                f"{list(tensor.shape)} in the model ({hint})"
            )


# ---------------------------------------------------------------------------------------- ViTPose format
def save_vitpose_checkpoint(model: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write `{"state_dict": ..., "meta": ...}` atomically; `meta` must hold plain Python values."""
    model = getattr(model, "module", model)  # DDP
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    info = dict(meta or {})
    cfg = getattr(model, "cfg", None)
    if cfg is not None and "model_config" not in info:
        info["model_config"] = cfg.to_dict()
    atomic_save(path, lambda tmp: torch.save({"state_dict": state, "meta": info}, tmp))


def load_vitpose_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Load a released-format file into `model` (a TopDownPoseModel or anything with the same keys).

    strict: missing or unexpected keys are an error (CheckpointError listing them); otherwise they
    are only reported. A shape mismatch is always an error naming the first key and both shapes.
    """
    model = getattr(model, "module", model)
    report = LoadReport(str(path))
    source = _state_dict_under(_read(path), "state_dict", path)
    target = model.state_dict()
    for key in STRAY_KEYS:
        if key in source and key not in target:
            source.pop(key)
            report.ignored.append(key)
    key = "backbone.pos_embed"
    if key in source and key in target and source[key].shape[1] + 1 == target[key].shape[1]:
        # A folded (1, N, C) embedding: the zero class slot makes the forward add exactly it.
        source[key] = torch.cat([source[key].new_zeros(1, 1, source[key].shape[2]), source[key]], dim=1)
        report.converted.append(f"{key}: folded (1, N, C) -> (1, N+1, C) with a zero class slot")
    _check_shapes(target, source, path, "a different architecture, size or input resolution")
    report.missing = [k for k in target if k not in source]
    report.unexpected = [k for k in source if k not in target]
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(
            f"{path}: does not match the model: missing keys {report.missing[:5]}"
            f"{' ...' if len(report.missing) > 5 else ''}, unexpected keys {report.unexpected[:5]}"
            f"{' ...' if len(report.unexpected) > 5 else ''}"
        )
    model.load_state_dict({k: v for k, v in source.items() if k in target}, strict=False)
    return report


# ---------------------------------------------------------------------------------------- MAE format
def _mae_pos_embed(pos: torch.Tensor, backbone: ViTPoseBackbone, path, report: LoadReport) -> torch.Tensor:
    """(1, 1 + n*n, C) -> (1, 1 + Hp*Wp, C): bicubic resize of the square grid, class slot kept."""
    channels = backbone.pos_embed.shape[2]
    grid_tokens = pos.shape[1] - 1
    side = round(grid_tokens ** 0.5)
    if pos.ndim != 3 or pos.shape[2] != channels or side * side != grid_tokens:
        raise CheckpointError(
            f"{path}: pos_embed has shape {list(pos.shape)} in the file; expected (1, 1 + n*n, {channels}) "
            f"to resize to the model's {list(backbone.pos_embed.shape)}"
        )
    new = list(backbone.grid_size)
    if [side, side] != new:
        pos = resample_abs_pos_embed(pos, new_size=new, old_size=[side, side], num_prefix_tokens=1,
                                     interpolation="bicubic", antialias=False, align_corners=False)
        report.converted.append(f"pos_embed: grid {side}x{side} -> {new[0]}x{new[1]} (bicubic)")
    return pos


def _mae_patch_kernel(weight: torch.Tensor, backbone: ViTPoseBackbone, path, report: LoadReport) -> torch.Tensor:
    """(C, 3, k, k) with k < 16 (ViT-H: 14) -> zero-padded (C, 3, 16, 16), centred."""
    target = backbone.patch_embed.proj.weight.shape
    k = weight.shape[-1]
    if weight.ndim == 4 and weight.shape[:2] == target[:2] and weight.shape[-2] == k and k < PATCH_SIZE \
            and (PATCH_SIZE - k) % 2 == 0:
        p = (PATCH_SIZE - k) // 2
        report.converted.append(f"patch_embed.proj.weight: kernel {k}x{k} zero-padded to {PATCH_SIZE}x{PATCH_SIZE}")
        return F.pad(weight, (p, p, p, p))
    return weight  # equal or incompatible: the shape check reports the latter


def load_mae_checkpoint(model_or_backbone: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Initialise a ViT backbone from an MAE file; returns the missing and unexpected keys.

    last_norm (and a model's keypoint_head) are expected to be missing. Blocks or embeddings that
    do not fit (other width, depth or heads) raise CheckpointError naming the first such key.
    """
    module = getattr(model_or_backbone, "module", model_or_backbone)
    backbone = getattr(module, "backbone", module)
    prefix = "backbone." if backbone is not module else ""
    if not isinstance(backbone, ViTPoseBackbone):
        raise CheckpointError(f"{path}: MAE checkpoints initialise ViT backbones, not {type(backbone).__name__}")
    report = LoadReport(str(path))
    source = _state_dict_under(_read(path), "model", path)
    for key in MAE_DROPPED:
        if source.pop(key, None) is not None:
            report.ignored.append(key)
    if "pos_embed" in source:
        source["pos_embed"] = _mae_pos_embed(source["pos_embed"], backbone, path, report)
    if "patch_embed.proj.weight" in source:
        source["patch_embed.proj.weight"] = _mae_patch_kernel(source["patch_embed.proj.weight"], backbone, path, report)
    target = backbone.state_dict()
    _check_shapes(target, source, path, "an MAE encoder of another size")
    missing = [k for k in target if k not in source]
    unexpected = [k for k in source if k not in target]
    # Encoder weights that do not line up mean another architecture (e.g. another depth).
    wrong = [k for k in missing if not k.startswith("last_norm.")] + [
        k for k in unexpected if k.startswith(("blocks.", "patch_embed.", "pos_embed"))
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: {wrong[0]} {'is missing from the file' if wrong[0] in missing else 'has no place in the model'}"
            f" (an MAE encoder of another depth or layout?); missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    backbone.load_state_dict({k: v for k, v in source.items() if k in target}, strict=False)
    report.missing = [prefix + k for k in missing]
    if prefix:
        report.missing += [k for k in module.state_dict() if not k.startswith(prefix)]
    report.unexpected = unexpected
    return report
