"""Which model a released-format checkpoint holds, told from its weights, so that a file is all a user gives.

`infer_model_config(state_dict, meta)` returns the ModelConfig to build:
- our own files carry `meta.model_config` (save_vitpose_checkpoint writes it): that is used as written;
- otherwise (the authors' released files, conversions) it is read off the tensors: ViT width from the
  patch kernel, depth from the block indices, ViTPose-S/B/L/H by (width, depth); classic decoder when
  there are deconvolutions (their count gives the feature stride: 2 -> 1/16, 1 -> 1/8), simple
  decoder otherwise; keypoints from the final layer; the input size from the position embedding's
  token count (a size of the paper's Table 4 with that many tokens, else a 4:3 or square grid);
  a ResNet by matching its keys and shapes against each known ResNet.
What weights cannot show is a default: full attention (window variants have no parameters of their
own), and for a ViT of no preset width the number of heads must be given (`overrides`).

`overrides` (ModelConfig keys, e.g. from the command line) win over both; naming another `arch`
drops the inferred custom widths. `load_pose_model(path, overrides)` reads the file once, builds the
model and loads it strictly; a file of another architecture fails naming the file and the first key.
"""
from __future__ import annotations

import os
import re
from typing import Any

import torch

from vitpose.models.checkpoint import LoadReport, load_vitpose_state, read_vitpose_file
from vitpose.models.config import ModelConfig
from vitpose.models.presets import RESNET_ARCHS, VIT_PRESETS
from vitpose.utils.errors import CheckpointError, UserError

# Input sizes of the paper (Table 4), tried first when a token count fits several grids.
PAPER_INPUTS = ((256, 192), (256, 256), (224, 224), (384, 288), (384, 384), (576, 432))
EXTRA_HEADS_PREFIX = "associate_keypoint_heads."  # decoders 1.. of multi-dataset files
_BLOCK = re.compile(r"^backbone\.blocks\.(\d+)\.")


def infer_model_config(state_dict: dict[str, torch.Tensor], meta: dict | None = None,
                       path: str | os.PathLike = "checkpoint", overrides: dict[str, Any] | None = None
                       ) -> ModelConfig:
    """The ModelConfig of a released-format state dict (see the module docstring for the rules).

    Raises CheckpointError naming `path` when the weights are not a pose model this project builds,
    or when something the weights cannot show is needed and not in `overrides`.
    """
    overrides = dict(overrides or {})
    saved = (meta or {}).get("model_config")
    if isinstance(saved, dict):
        base = dict(saved)
    elif "backbone.patch_embed.proj.weight" in state_dict:
        base = _vit_config(state_dict, path, overrides)
    elif any(k.startswith("backbone.layer1.") for k in state_dict):
        base = _resnet_config(state_dict, path)
    else:
        raise CheckpointError(f"{path}: no ViT (backbone.patch_embed.*) or ResNet (backbone.layer1.*) "
                              f"weights; expected a released ViTPose pose model, found keys "
                              f"{sorted(state_dict)[:5]}")
    if "arch" in overrides and overrides["arch"] != base.get("arch"):
        for key in ("embed_dim", "depth", "num_heads"):  # widths of the inferred custom ViT
            base.pop(key, None)
    try:
        return ModelConfig.from_dict({**base, **overrides})
    except UserError as exc:
        raise CheckpointError(f"{path}: the model it holds cannot be built: {exc}") from None


def _vit_config(sd: dict[str, torch.Tensor], path, overrides: dict) -> dict:
    if any(".mlp.experts." in k for k in sd):
        raise CheckpointError(f"{path}: a ViTPose+ file (mixture-of-experts MLPs, backbone.blocks.*.mlp."
                              f"experts); this project builds the plain ViTPose backbone only")
    embed_dim = int(sd["backbone.patch_embed.proj.weight"].shape[0])
    blocks = {int(m.group(1)) for k in sd if (m := _BLOCK.match(k))}
    depth = max(blocks) + 1 if blocks else 0
    cfg: dict[str, Any] = {}
    preset = next((name for name, p in VIT_PRESETS.items()
                   if (p["embed_dim"], p["depth"]) == (embed_dim, depth)), None)
    if preset is not None:
        cfg["arch"] = preset
    else:
        if "num_heads" not in overrides:
            raise CheckpointError(f"{path}: a ViT of width {embed_dim} and depth {depth} is none of "
                                  f"ViTPose-S/B/L/H and its number of heads cannot be told from the "
                                  f"weights; give it (--heads)")
        cfg.update(arch="vit", embed_dim=embed_dim, depth=depth)
    decoder, deconvs = _decoder_config(sd, path)
    cfg.update(decoder)
    if decoder["decoder"] == "classic":
        # Each deconvolution doubles the resolution up to 1/4: 2 from 1/16 (ratio 1), 1 from 1/8 (ratio 2).
        if deconvs not in (1, 2):
            raise CheckpointError(f"{path}: a classic decoder with {deconvs} deconvolutions; a ViT needs "
                                  f"2 (1/16 features) or 1 (1/8)")
        cfg["ratio"] = 3 - deconvs
    ratio = overrides.get("ratio", cfg.get("ratio", 1))
    if "input_size" not in overrides:
        cfg["input_size"] = _input_size(sd, ratio, path)
    if "knowledge_token.token" in sd:
        cfg["knowledge_token"] = int(sd["knowledge_token.token"].shape[-1])
    return cfg


def _decoder_config(sd: dict[str, torch.Tensor], path) -> tuple[dict, int]:
    """({decoder, num_keypoints[, decoder_channels]}, number of deconvolutions) of the keypoint head."""
    final = sd.get("keypoint_head.final_layer.weight")
    if final is None or final.ndim != 4:
        raise CheckpointError(f"{path}: no keypoint_head.final_layer.weight; expected a pose model with a "
                              f"classic or simple decoder")
    deconvs = [k for k in sd if re.fullmatch(r"keypoint_head\.deconv_layers\.\d+\.weight", k)
               and sd[k].ndim == 4]
    if not deconvs:
        return {"decoder": "simple", "num_keypoints": int(final.shape[0])}, 0
    return {"decoder": "classic", "num_keypoints": int(final.shape[0]),
            "decoder_channels": int(sd["keypoint_head.deconv_layers.0.weight"].shape[1])}, len(deconvs)


def _input_size(sd: dict[str, torch.Tensor], ratio: int, path) -> list[int]:
    """Input (H, W) whose token grid has the position embedding's count (class slot, or a folded one)."""
    pos = sd.get("backbone.pos_embed")
    if pos is None or pos.ndim != 3:
        raise CheckpointError(f"{path}: no backbone.pos_embed of shape (1, N+1, C)")
    stride = 16 // ratio
    for tokens in (pos.shape[1] - 1, pos.shape[1]):  # (1, N+1, C) released, (1, N, C) folded ports
        for h, w in PAPER_INPUTS:
            if (h // stride) * (w // stride) == tokens:
                return [h, w]
        k = round((tokens / 12) ** 0.5)  # a 4:3 grid (the paper's aspect): 4k x 3k tokens
        if k > 0 and 12 * k * k == tokens:
            return [4 * k * stride, 3 * k * stride]
        side = round(tokens ** 0.5)  # else a square one
        if side * side == tokens:
            return [side * stride, side * stride]
    raise CheckpointError(f"{path}: cannot tell the input size from the position embedding "
                          f"{list(pos.shape)}; give it (--input HxW)")


def _resnet_config(sd: dict[str, torch.Tensor], path) -> dict:
    """The ResNet whose backbone keys and shapes are the file's (built on the meta device: no memory)."""
    from vitpose.models.resnet import build_resnet_backbone

    ours = {k[len("backbone."):]: tuple(v.shape) for k, v in sd.items() if k.startswith("backbone.")}
    for arch in RESNET_ARCHS:
        with torch.device("meta"):
            theirs = {k: tuple(v.shape) for k, v in build_resnet_backbone(arch).state_dict().items()}
        if theirs == ours:
            return {"arch": arch, **_decoder_config(sd, path)[0]}
    raise CheckpointError(f"{path}: a ResNet backbone that is none of {', '.join(RESNET_ARCHS)}")


def load_pose_model(path: str | os.PathLike, overrides: dict[str, Any] | None = None,
                    ) -> tuple[torch.nn.Module, ModelConfig, LoadReport]:
    """(model in eval mode, its config, the load report) of a released-format file.

    A multi-dataset file's extra decoders (`associate_keypoint_heads.*`) are left out (reported as
    ignored): the model is decoder 0's, the primary dataset's. Any other mismatch is an error.
    """
    from vitpose.models.build import build_model

    state_dict, meta = read_vitpose_file(path)
    extra = [k for k in state_dict if k.startswith(EXTRA_HEADS_PREFIX)]
    for key in extra:
        del state_dict[key]
    cfg = infer_model_config(state_dict, meta, path, overrides)
    model = build_model(cfg)
    report = load_vitpose_state(model, state_dict, path, strict=True)
    report.ignored += extra
    return model.eval(), cfg, report
