"""Conversion between the released ViTPose format and transformers' VitPose checkpoints, both ways.

transformers' layout (`VitPoseForPoseEstimation`: a directory with `config.json` and
`model.safetensors`) holds the same numbers under other names: the backbone's `embeddings`, `encoder.
layer.{i}` (`layernorm_before`, `attention.attention.{query,key,value}`, `attention.output.dense`,
`layernorm_after`, `mlp.fc1/fc2`) and `layernorm`; the classic head's `deconv1`, `batchnorm1`,
`deconv2`, `batchnorm2`, `conv`, or the simple head's `conv`. Ours fuses q, k, v into one
`attn.qkv` whose rows are [q; k; v], so that Linear is split into three (and fused back).

What converts: a plain ViT (ViTPose-S/B/L/H or a custom width; not ViTAE, i.e. ViTPose-G) at 1/16
features with full attention, and either decoder (the classic one with 256 channels: transformers'
is fixed at that). Refused with an error saying why: ResNet backbones, 1/8 features (ratio 2),
window attention variants, a knowledge token, other classic widths (this side); ViTPose+
mixture-of-experts backbones, intermediate-layer outputs, patch size / MLP ratio / activation other
than ViTPose's (the transformers side). A multi-dataset file's extra decoders are left out
(transformers' model has one head).

LayerNorm epsilon: ours is the released 1e-6; files written here say so in their config. A
transformers config with another epsilon converts with a note: the heatmaps differ by that little.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from vitpose.models.architecture import EXTRA_HEADS_PREFIX, load_pose_model
from vitpose.models.checkpoint import load_vitpose_state, save_vitpose_checkpoint
from vitpose.models.config import ModelConfig
from vitpose.models.presets import VIT_PRESETS
from vitpose.models.vit import LN_EPS, PATCH_SIZE
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import atomic_path, atomic_write_text

HF_CONFIG, HF_WEIGHTS, HF_INDEX = "config.json", "model.safetensors", "model.safetensors.index.json"
HF_CLASSIC_CHANNELS = 256
_QKV = ("query", "key", "value")


def _module_pairs(depth: int, decoder: str) -> Iterator[tuple[str, str]]:
    """(our prefix, transformers prefix) of every module but the fused qkv."""
    yield "backbone.patch_embed.proj.", "backbone.embeddings.patch_embeddings.projection."
    yield "backbone.pos_embed", "backbone.embeddings.position_embeddings"
    yield "backbone.last_norm.", "backbone.layernorm."
    for i in range(depth):
        ours, theirs = f"backbone.blocks.{i}.", f"backbone.encoder.layer.{i}."
        yield ours + "norm1.", theirs + "layernorm_before."
        yield ours + "attn.proj.", theirs + "attention.output.dense."
        yield ours + "norm2.", theirs + "layernorm_after."
        yield ours + "mlp.fc1.", theirs + "mlp.fc1."
        yield ours + "mlp.fc2.", theirs + "mlp.fc2."
    if decoder == "classic":  # Sequential indices 0, 1 / 3, 4: deconvolution, batch norm (2, 5: ReLU)
        for index, name in ((0, "deconv1"), (1, "batchnorm1"), (3, "deconv2"), (4, "batchnorm2")):
            yield f"keypoint_head.deconv_layers.{index}.", f"head.{name}."
    yield "keypoint_head.final_layer.", "head.conv."


def _rename(state: dict[str, torch.Tensor], pairs: list[tuple[str, str]], path, what: str) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in state.items():
        match = next(((a, b) for a, b in pairs if key.startswith(a)), None)
        if match is None:
            raise CheckpointError(f"{path}: {key} has no place in the {what} layout")
        out[match[1] + key[len(match[0]):]] = tensor.contiguous()
    return out


# ---------------------------------------------------------------------------------------- ours -> transformers
def check_hf_convertible(cfg: ModelConfig, path: str | os.PathLike) -> None:
    """CheckpointError naming `path` and the reason when transformers' VitPose cannot hold `cfg`'s model."""
    why = None
    if not cfg.is_vit or cfg.is_vitae:
        why = f"a {cfg.arch} backbone (transformers' VitPose has a plain ViT backbone only)"
    elif cfg.ratio != 1:
        why = "1/8 features (ratio 2; transformers' patch embedding has stride 16)"
    elif cfg.attention != "full":
        why = f"attention '{cfg.attention}' (transformers' VitPose has full attention only)"
    elif cfg.knowledge_token is not None:
        why = "a knowledge token (transformers' VitPose has no extra tokens)"
    elif cfg.decoder == "classic" and cfg.decoder_channels != HF_CLASSIC_CHANNELS:
        why = f"a classic decoder of {cfg.decoder_channels} channels (transformers' has {HF_CLASSIC_CHANNELS})"
    if why:
        raise CheckpointError(f"{path}: cannot be converted to the transformers format: {why}")


def hf_config(cfg: ModelConfig):
    """transformers' VitPoseConfig of a convertible ModelConfig (check_hf_convertible first)."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig

    vit = cfg.vit_args()
    backbone = VitPoseBackboneConfig(
        image_size=list(cfg.input_size), patch_size=[PATCH_SIZE, PATCH_SIZE], hidden_size=vit["embed_dim"],
        num_hidden_layers=vit["depth"], num_attention_heads=vit["num_heads"], mlp_ratio=4, qkv_bias=True,
        layer_norm_eps=LN_EPS, hidden_act="gelu", out_indices=[vit["depth"]])  # the last block's output
    return VitPoseConfig(backbone_config=backbone, use_simple_decoder=cfg.decoder == "simple", scale_factor=4,
                         num_labels=cfg.num_keypoints, architectures=["VitPoseForPoseEstimation"])


def released_to_hf_state(state: dict[str, torch.Tensor], cfg: ModelConfig,
                         path="checkpoint") -> dict[str, torch.Tensor]:
    """Our state dict (keys of build_model(cfg)) -> transformers' keys, qkv split into query / key / value."""
    depth = cfg.vit_args()["depth"]
    state = dict(state)
    out = {}
    for i in range(depth):
        for part in ("weight", "bias"):
            fused = state.pop(f"backbone.blocks.{i}.attn.qkv.{part}")  # (3C, C) / (3C,): rows [q; k; v]
            for name, chunk in zip(_QKV, fused.chunk(3, dim=0)):
                out[f"backbone.encoder.layer.{i}.attention.attention.{name}.{part}"] = chunk.clone()
    out.update(_rename(state, list(_module_pairs(depth, cfg.decoder)), path, "transformers VitPose"))
    return out


def convert_released_to_hf(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                           overrides: dict | None = None) -> list[str]:
    """Write `out_dir/model.safetensors` and `out_dir/config.json` (each atomically, the config last)
    from a released-format file; returns notes on what was left out."""
    from safetensors.torch import save_file

    # Loading into our model first checks every key and shape and undoes a folded position embedding.
    model, cfg, report = load_pose_model(checkpoint, overrides)
    check_hf_convertible(cfg, checkpoint)
    extra = [k for k in report.ignored if k.startswith(EXTRA_HEADS_PREFIX)]
    notes = [f"left out {len(extra)} tensors of the extra decoders ({EXTRA_HEADS_PREFIX}*): "
             f"transformers' model has one head, decoder 0's"] if extra else []
    tensors = released_to_hf_state(model.state_dict(), cfg, checkpoint)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / HF_WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    atomic_write_text(out_dir / HF_CONFIG, hf_config(cfg).to_json_string())
    return notes


# ---------------------------------------------------------------------------------------- transformers -> ours
def read_hf(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], object, Path]:
    """(tensors, VitPoseConfig, config path) of a transformers VitPose checkpoint: a directory with
    config.json and model.safetensors (or its sharded index), or a .safetensors file beside config.json."""
    from safetensors.torch import load_file
    from transformers import VitPoseConfig

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_file = folder / HF_CONFIG
    if not path.exists():
        raise CheckpointError(f"{path}: no such transformers checkpoint (a directory with {HF_CONFIG} and "
                              f"{HF_WEIGHTS})")
    if not config_file.is_file():
        raise CheckpointError(f"{config_file}: not found; a transformers VitPose checkpoint needs its config "
                              f"beside the weights")
    try:
        config_data = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_file}: not a readable JSON config ({exc})") from None
    if not isinstance(config_data, dict) or config_data.get("model_type") != "vitpose":
        got = config_data.get("model_type") if isinstance(config_data, dict) else type(config_data).__name__
        raise CheckpointError(f"{config_file}: model_type {got!r}; expected 'vitpose' (VitPoseForPoseEstimation)")
    config = VitPoseConfig.from_json_file(str(config_file))
    if path.is_file():
        files = [path]
    elif (folder / HF_WEIGHTS).is_file():
        files = [folder / HF_WEIGHTS]
    elif (folder / HF_INDEX).is_file():
        try:
            files = [folder / f for f in sorted(set(json.loads((folder / HF_INDEX).read_text())["weight_map"].values()))]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{folder / HF_INDEX}: expected a shard index with a weight_map "
                                  f"({type(exc).__name__}: {exc})") from None
    else:
        raise CheckpointError(f"{path}: neither {HF_WEIGHTS} nor {HF_INDEX} in the directory")
    tensors = {}
    for file in files:
        try:
            tensors.update(load_file(str(file)))
        except Exception as exc:  # noqa: BLE001 - missing, truncated or not safetensors: one problem
            raise CheckpointError(f"{file}: cannot be read as safetensors ({str(exc)[:160]})") from None
    return tensors, config, config_file


def model_config_from_hf(config, path) -> tuple[ModelConfig, list[str]]:
    """Our ModelConfig of a transformers VitPoseConfig, and notes; CheckpointError naming `path` for
    what this project's model cannot be."""
    b = config.backbone_config
    patch = list(b.patch_size) if isinstance(b.patch_size, (list, tuple)) else [b.patch_size] * 2
    image = list(b.image_size) if isinstance(b.image_size, (list, tuple)) else [b.image_size] * 2
    problems = [
        (b.num_experts != 1, f"num_experts {b.num_experts}: a ViTPose+ mixture-of-experts backbone"),
        (list(b.out_indices) != [b.num_hidden_layers],
         f"out_indices {list(b.out_indices)}: heads read block {b.num_hidden_layers}'s output"),
        (patch != [PATCH_SIZE, PATCH_SIZE], f"patch_size {patch}; ViTPose's is {PATCH_SIZE}"),
        (b.mlp_ratio != 4, f"mlp_ratio {b.mlp_ratio}; ViTPose's is 4"),
        (b.hidden_act != "gelu", f"hidden_act {b.hidden_act!r}; ViTPose's is exact 'gelu'"),
        (b.num_channels != 3, f"num_channels {b.num_channels}; expected RGB"),
        (config.scale_factor != 4, f"scale_factor {config.scale_factor}; 1/16 features need 4"),
    ]
    for bad, why in problems:
        if bad:
            raise CheckpointError(f"{path}: cannot be converted to the released format: {why}")
    dims = (b.hidden_size, b.num_hidden_layers, b.num_attention_heads)
    preset = next((n for n, p in VIT_PRESETS.items() if (p["embed_dim"], p["depth"], p["num_heads"]) == dims), None)
    custom = {} if preset else dict(embed_dim=dims[0], depth=dims[1], num_heads=dims[2])
    cfg = ModelConfig(arch=preset or "vit", decoder="simple" if config.use_simple_decoder else "classic",
                      input_size=tuple(image), num_keypoints=config.num_labels,
                      decoder_channels=HF_CLASSIC_CHANNELS, **custom)
    notes = []
    if abs(b.layer_norm_eps - LN_EPS) > 1e-12:
        notes.append(f"layer_norm_eps {b.layer_norm_eps:g} in {path}; this project's ViT uses {LN_EPS:g} (the "
                     f"released value), so heatmaps may differ very slightly")
    if not b.qkv_bias:
        notes.append("qkv_bias false: the fused qkv gets a zero bias (the same function)")
    return cfg, notes


def hf_to_released_state(tensors: dict[str, torch.Tensor], cfg: ModelConfig,
                         path="checkpoint") -> dict[str, torch.Tensor]:
    """transformers' keys -> ours (query / key / value fused into qkv; a missing bias is zero)."""
    depth = cfg.vit_args()["depth"]
    tensors = dict(tensors)
    out = {}
    for i in range(depth):
        prefix = f"backbone.encoder.layer.{i}.attention.attention."
        try:
            weights = [tensors.pop(f"{prefix}{n}.weight") for n in _QKV]
        except KeyError as exc:
            raise CheckpointError(f"{path}: {exc.args[0]} is missing (a model of depth {depth})") from None
        biases = [tensors.pop(f"{prefix}{n}.bias", None) for n in _QKV]
        out[f"backbone.blocks.{i}.attn.qkv.weight"] = torch.cat(weights, dim=0)          # (3C, C)
        out[f"backbone.blocks.{i}.attn.qkv.bias"] = torch.cat(
            [b if b is not None else w.new_zeros(w.shape[0]) for b, w in zip(biases, weights)])
    pairs = [(b, a) for a, b in _module_pairs(depth, cfg.decoder)]
    out.update(_rename(tensors, pairs, path, "released ViTPose"))
    return out


def convert_hf_to_released(path: str | os.PathLike, out_file: str | os.PathLike) -> list[str]:
    """Write a released-format `.pth` (`state_dict` + `meta` with `model_config`, so the architecture
    needs no guessing) from a transformers VitPose checkpoint; returns notes."""
    from vitpose.models.build import build_model

    tensors, config, config_file = read_hf(path)
    cfg, notes = model_config_from_hf(config, config_file)
    model = build_model(cfg)
    load_vitpose_state(model, hf_to_released_state(tensors, cfg, path), path, strict=True)
    save_vitpose_checkpoint(model, out_file, meta={"converted_from": f"transformers VitPose ({Path(path).name})"})
    return notes
