"""Command-line flags that choose a model (shared by stages.model_info and stages.benchmark)."""
from __future__ import annotations

import argparse

from vitpose.models.config import ATTENTIONS, DECODERS, ModelConfig
from vitpose.models.presets import ARCHS


def add_model_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="vitpose-b", choices=ARCHS, help="preset, ResNet, or 'vit' (custom)")
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


def config_from_args(args: argparse.Namespace) -> ModelConfig:
    """ModelConfig from the flags of add_model_args (ConfigError on a bad value)."""
    return ModelConfig(
        arch=args.model,
        decoder=args.decoder,
        input_size=args.input,
        ratio=args.ratio,
        attention=args.attention,
        window_size=args.window,
        shift=args.shift,
        pool=args.pool,
        freeze=None if args.freeze in (None, "none") else args.freeze,
        num_keypoints=args.num_keypoints,
        embed_dim=args.embed_dim,
        depth=args.depth,
        num_heads=args.heads,
        drop_path_rate=args.drop_path,
        decoder_channels=args.decoder_channels,
    )

