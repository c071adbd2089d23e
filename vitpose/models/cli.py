"""Command-line flags that choose a model (shared by stages.model_info, stages.benchmark, and, as
overrides of what a checkpoint holds, by stages.predict / stages.export / stages.convert)."""
from __future__ import annotations

import argparse

from vitpose.models.config import ATTENTIONS, DECODERS, ModelConfig
from vitpose.models.presets import ARCHS

# flag destination -> ModelConfig key
FLAG_KEYS = {
    "model": "arch", "decoder": "decoder", "input": "input_size", "ratio": "ratio",
    "attention": "attention", "window": "window_size", "shift": "shift", "pool": "pool",
    "freeze": "freeze", "num_keypoints": "num_keypoints", "embed_dim": "embed_dim", "depth": "depth",
    "heads": "num_heads", "drop_path": "drop_path_rate", "decoder_channels": "decoder_channels",
}


def add_model_args(parser: argparse.ArgumentParser, from_checkpoint: bool = False) -> None:
    """The model flags. from_checkpoint: every flag defaults to what the checkpoint holds (None here;
    `model_overrides` returns only the flags given), for commands whose model comes from a file."""
    g = parser.add_argument_group("model (default: as the checkpoint holds)" if from_checkpoint else "model")
    g.add_argument("--model", default="vitpose-b", choices=ARCHS, help="preset, ResNet, or 'vit' / 'vitae' (custom)")
    g.add_argument("--decoder", default="classic", choices=DECODERS)
    g.add_argument("--input", default="256x192", help="input size HxW (default 256x192)")
    g.add_argument("--ratio", type=int, default=1, choices=(1, 2), help="2 = 1/8 features (Table 5)")
    g.add_argument("--attention", default="full", choices=ATTENTIONS)
    g.add_argument("--window", default="8x8", help="window size HxW in tokens (default 8x8)")
    g.add_argument("--shift", action="store_true", help="shifted windows on alternating blocks")
    g.add_argument("--pool", action="store_true", help="pooling-window global tokens")
    g.add_argument("--freeze", default=None, choices=("none", "mhsa", "ffn"), help="partial finetuning (Table 6)")
    g.add_argument("--num-keypoints", type=int, default=17)
    g.add_argument("--embed-dim", type=int, default=None, help="override the preset's width")
    g.add_argument("--depth", type=int, default=None, help="override the preset's depth")
    g.add_argument("--heads", type=int, default=None, help="override the preset's number of heads")
    g.add_argument("--drop-path", type=float, default=None, help="override the preset's drop-path rate")
    g.add_argument("--decoder-channels", type=int, default=256)
    if from_checkpoint:
        parser.set_defaults(**{dest: None for dest in FLAG_KEYS})


def model_overrides(args: argparse.Namespace) -> dict:
    """ModelConfig keys of the flags given on the command line (parser built with from_checkpoint)."""
    out = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest) is not None}
    if out.get("freeze") == "none":
        out["freeze"] = None
    return out


def config_from_args(args: argparse.Namespace) -> ModelConfig:
    """ModelConfig from the flags of add_model_args (ConfigError on a bad value)."""
    values = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items()}
    values["freeze"] = None if args.freeze in (None, "none") else args.freeze
    return ModelConfig(**values)
