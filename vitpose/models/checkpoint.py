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
slot; a patch-14 kernel (ViT-H, ViTAE-G) is zero-padded to 16x16, one pixel each side (paper §3.2).
A ViTAE encoder (ViTPose-G, models/vitae.py) is read from the same layout, its blocks carrying
`blocks.{i}.PCM.{0,1,3}` (the public ViTAE name, mapped to our `pcm`) or `blocks.{i}.pcm.*`.

Every check runs before any weight is copied, so a failed load leaves the model untouched.

Reading: every file goes through `read_torch_file` (weights_only: a checkpoint is data, never code to
run), whose errors name the file and say what is wrong in our words — missing, truncated / corrupt,
or refused because it holds pickled objects other than tensors. `detect_checkpoint_format` tells the
two formats apart and `load_pretrained` dispatches on it (the `pretrained` initialisation of a run).
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from torch import nn

from vitpose.models.vit import PATCH_SIZE, ViTPoseBackbone
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import atomic_torch_save

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
# torch's messages when weights_only refuses a pickle (rather than failing to parse it)
_REFUSED = re.compile(r"Unsupported global|Unsupported class|unrecognized function|allowlist", re.IGNORECASE)
_GLOBAL = re.compile(r"GLOBAL ([\w.<>]+)")


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint", *, hint: str = "",
                    map_location: Any = "cpu", mmap: bool = False) -> Any:
    """`torch.load(path, weights_only=True)` with CheckpointErrors that start with the path.

    what: the kind of file, for the messages ("training state", "pretrained checkpoint");
    hint: appended to the truncated / corrupt message (what the user can do about it);
    mmap: map the file instead of reading it (zip-format files only; cheap for peeking at keys).
    Refusals (a pickle that would build objects other than tensors and plain values, i.e. run code)
    get our own message naming the offending global, not torch's advice to drop weights_only.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file ({what})")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if _REFUSED.search(text):
            found = _GLOBAL.search(text)
            advice = hint or "if the file is trusted, re-save just its tensors (the state dicts) and use that"
            raise CheckpointError(
                f"{path}: refusing to load the {what}: it contains code/objects other than tensors"
                f"{f' ({found.group(1)})' if found else ''}, and only tensors and plain values are "
                f"loaded; {advice}") from None
        raise _corrupt(path, what, text, hint) from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, empty file, foreign format: one problem
        reason = "empty file" if os.path.getsize(path) == 0 else str(exc) or type(exc).__name__
        raise _corrupt(path, what, reason, hint) from None


def _corrupt(path, what: str, reason: str, hint: str) -> CheckpointError:
    # torch's reasons run over several lines of advice; the first says what failed
    first = reason.strip().splitlines()[0].split(". ")[0] if reason.strip() else "empty file"
    if "Weights only load failed" in first:
        first = "not a PyTorch file"
    return CheckpointError(f"{path}: the {what} cannot be read: the file is truncated or corrupt "
                           f"({first[:160]}){f'; {hint}' if hint else ''}")


def _read(path: str | os.PathLike, what: str = "checkpoint", mmap: bool = False) -> dict:
    obj = read_torch_file(path, what, mmap=mmap)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(obj).__name__}")
    return obj


def _state_dict_under(obj: dict, key: str, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    sd = obj.get(key)
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: expected a '{key}' entry holding the weights, found keys {sorted(obj)[:8]}")
    if all(k.startswith("module.") for k in sd):  # saved from a DDP wrapper
        sd = {k[len("module."):]: v for k, v in sd.items()}
    # ViTAE's public code names the parallel convolution module `PCM`; ours is `pcm` (models/vitae.py).
    return {k.replace(".PCM.", ".pcm."): v for k, v in sd.items()}


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
    # contiguous: the file holds plain (N, C, H, W) tensors whatever layout training used
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info = dict(meta or {})
    cfg = getattr(model, "cfg", None)
    if cfg is not None and "model_config" not in info:
        info["model_config"] = cfg.to_dict()
    atomic_torch_save(path, {"state_dict": state, "meta": info})


def load_vitpose_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Load a released-format file into `model` (a TopDownPoseModel or anything with the same keys).

    strict: missing or unexpected keys are an error (CheckpointError listing them); otherwise they
    are only reported. A shape mismatch is always an error naming the first key and both shapes.
    """
    return _load_vitpose(model, _read(path), path, strict)


def read_vitpose_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, meta) of a released-format file, read once (`module.` prefixes stripped, meta {}
    when absent). An MAE pre-training file is refused by name: it holds no keypoint head."""
    obj = _read(path)
    if _format_of(obj) == "mae":
        raise CheckpointError(f"{path}: an MAE pre-training checkpoint (an encoder under 'model'), not a "
                              f"pose model; expected a released ViTPose file with 'state_dict'")
    meta = obj.get("meta")
    return _state_dict_under(obj, "state_dict", path), meta if isinstance(meta, dict) else {}


def load_vitpose_state(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike,
                       strict: bool = True) -> LoadReport:
    """`load_vitpose_checkpoint` for weights already read (`read_vitpose_file`); `path` names them in errors."""
    return _load_vitpose(model, {"state_dict": state_dict}, path, strict)


def _load_vitpose(model: nn.Module, obj: dict, path, strict: bool) -> LoadReport:
    model = getattr(model, "module", model)
    report = LoadReport(str(path))
    source = _state_dict_under(obj, "state_dict", path)
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
    return _load_mae(model_or_backbone, _read(path), path)


def _load_mae(model_or_backbone: nn.Module, obj: dict, path) -> LoadReport:
    module = getattr(model_or_backbone, "module", model_or_backbone)
    backbone = getattr(module, "backbone", module)
    prefix = "backbone." if backbone is not module else ""
    if not isinstance(backbone, ViTPoseBackbone):
        raise CheckpointError(f"{path}: MAE checkpoints initialise ViT backbones, not {type(backbone).__name__}")
    report = LoadReport(str(path))
    source = _state_dict_under(obj, "model", path)
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
    # (BatchNorm's step counter, absent from files of old PyTorch versions, is no weight.)
    wrong = [k for k in missing if not k.startswith("last_norm.") and not k.endswith("num_batches_tracked")] + [
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


# ---------------------------------------------------------------------------------------- either format
CheckpointFormat = Literal["mae", "vitpose"]


def _format_of(obj: dict) -> CheckpointFormat:
    # MAE files (official and ours) hold the encoder under `model`, released ViTPose files under
    # `state_dict`; a file with neither goes to the ViTPose loader, whose error lists the keys found.
    return "mae" if "model" in obj else "vitpose"


def detect_checkpoint_format(path: str | os.PathLike) -> CheckpointFormat:
    """'mae' or 'vitpose', from the top-level keys; the file is mapped, not read (multi-GB files)."""
    try:
        obj = _read(path, mmap=True)
    except CheckpointError:
        obj = _read(path)  # legacy (non-zip) files cannot be mapped; this reports the real problem
    return _format_of(obj)


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Initialise `model` from either format: an MAE file sets the backbone only; a released ViTPose
    file sets every matching weight (strict=False: the rest, e.g. another head, keeps its init)."""
    obj = _read(path, "pretrained checkpoint")
    if _format_of(obj) == "mae":
        return _load_mae(model, obj, path)
    return _load_vitpose(model, obj, path, strict=False)
