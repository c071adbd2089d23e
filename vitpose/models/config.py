"""ModelConfig: everything that decides a model's architecture, validated on construction."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from vitpose.models.presets import ARCHS, CUSTOM_VIT, CUSTOM_VITAE, RESNET_ARCHS, VIT_PRESETS, VITAE_PRESETS
from vitpose.utils.errors import ConfigError

DECODERS = ("classic", "simple")
ATTENTIONS = ("full", "window", "vitdet")
FREEZES = (None, "mhsa", "ffn")
PATCH_SIZE = 16  # ViTPose's patch (kernel) size at every feature ratio
RESNET_STRIDE = 32


def parse_size(value: Any, key: str) -> tuple[int, int]:
    """`"256x192"`, `[256, 192]` or `(256, 192)` -> `(256, 192)` (H, W); ConfigError naming `key`."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if not m:
            raise ConfigError(f"{key}: expected HxW such as 256x192, got {value!r}")
        h, w = int(m.group(1)), int(m.group(2))
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        h, w = value
    else:
        raise ConfigError(f"{key}: expected [H, W] (two integers) or 'HxW', got {value!r}")
    if h <= 0 or w <= 0:
        raise ConfigError(f"{key}: expected positive sizes, got {h}x{w}")
    return int(h), int(w)


def _check_int(value: Any, key: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key}: expected an integer >= {minimum}, got {value!r}")


def _check_choice(value: Any, key: str, choices: tuple) -> None:
    if value not in choices:
        shown = ", ".join("null" if c is None else str(c) for c in choices)
        raise ConfigError(f"{key}: expected one of {shown}, got {value!r}")


@dataclass
class ModelConfig:
    """Architecture of a top-down pose model; sizes are (H, W).

    `embed_dim`, `depth`, `num_heads`, `drop_path_rate` override the preset of `arch` (arch "vit"
    and "vitae" need the first three). `ratio` 2 gives the paper's 1/8 features (overlapping patches, stride 8).
    """

    arch: str = "vitpose-b"
    decoder: str = "classic"
    input_size: tuple[int, int] = (256, 192)
    ratio: int = 1
    attention: str = "full"
    window_size: tuple[int, int] = (8, 8)
    shift: bool = False
    pool: bool = False
    freeze: str | None = None
    num_keypoints: int = 17
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    drop_path_rate: float | None = None
    decoder_channels: int = 256
    # A distilled student's knowledge token (paper Eq. 6): the width of the teacher's token it carries
    # (1,024 for a ViTPose-L teacher); null: no token. Needs a ViT with full attention.
    knowledge_token: int | None = None

    def __post_init__(self) -> None:
        self.input_size = parse_size(self.input_size, "input_size")
        self.window_size = parse_size(self.window_size, "window_size")
        self._validate()

    # ------------------------------------------------------------------ derived properties
    @property
    def is_vit(self) -> bool:
        return self.arch not in RESNET_ARCHS

    @property
    def is_vitae(self) -> bool:
        """A ViTAE backbone (ViT blocks plus a parallel convolution branch): ViTPose-G, "vitae"."""
        return self.arch in VITAE_PRESETS or self.arch == CUSTOM_VITAE

    @property
    def feature_stride(self) -> int:
        """Input pixels per feature-map cell: 16/ratio for ViT, 32 for ResNet."""
        return PATCH_SIZE // self.ratio if self.is_vit else RESNET_STRIDE

    def oversized_window(self) -> str | None:
        """Why the window cannot be what it says (larger than the token grid), or None.

        The attention layer clamps such a window to the grid, i.e. to full attention: right for a
        library user probing small inputs, wrong for a run that claims to study window attention,
        so run configs (vitpose.config.RunConfig) refuse it with this message."""
        if not self.is_vit or self.attention == "full":
            return None
        grid = self.token_grid
        if self.window_size[0] <= grid[0] and self.window_size[1] <= grid[1]:
            return None
        return (f"{self.window_size[0]}x{self.window_size[1]} is larger than the {grid[0]}x{grid[1]} token "
                f"grid of input {self.input_size[0]}x{self.input_size[1]} at ratio {self.ratio}, so "
                f"attention '{self.attention}' would silently be full attention; expected a window of at "
                f"most {grid[0]}x{grid[1]}")

    @property
    def token_grid(self) -> tuple[int, int]:
        """(Hp, Wp): tokens of a ViT backbone (input / feature stride; the patch padding keeps it exact)."""
        return self.input_size[0] // self.feature_stride, self.input_size[1] // self.feature_stride

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Heatmaps are always 1/4 of the input (paper Eq. 2)."""
        return self.input_size[0] // 4, self.input_size[1] // 4

    def vit_args(self) -> dict:
        """embed_dim, depth, num_heads, drop_path_rate after applying the overrides.

        The presets hold architecture only; drop path is a training hyper-parameter (params.yaml
        `hyperparameters`, paper Table 1) that the run's config sets, 0 when not given."""
        base = dict(VIT_PRESETS.get(self.arch) or VITAE_PRESETS.get(self.arch) or {})
        base.setdefault("drop_path_rate", 0.0)
        for key in ("embed_dim", "depth", "num_heads", "drop_path_rate"):
            if getattr(self, key) is not None:
                base[key] = getattr(self, key)
        return base

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Build from a mapping (e.g. a params.yaml section); unknown key / bad value -> ConfigError."""
        if not isinstance(d, dict):
            raise ConfigError(f"model: expected a mapping, got {d!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                raise ConfigError(f"{key}: unknown model key (expected one of {', '.join(names)})")
        return cls(**d)

    def to_dict(self) -> dict:
        """JSON-friendly form (sizes as [H, W] lists); `from_dict(to_dict())` round-trips."""
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        d["window_size"] = list(self.window_size)
        return d

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        _check_choice(self.arch, "arch", ARCHS)
        _check_choice(self.decoder, "decoder", DECODERS)
        _check_choice(self.attention, "attention", ATTENTIONS)
        _check_choice(self.freeze, "freeze", FREEZES)
        if isinstance(self.ratio, bool):
            raise ConfigError(f"ratio: expected 1 or 2, got {self.ratio!r}")
        _check_choice(self.ratio, "ratio", (1, 2))
        for key in ("shift", "pool"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key}: expected true or false, got {getattr(self, key)!r}")
        _check_int(self.num_keypoints, "num_keypoints", 1)
        _check_int(self.decoder_channels, "decoder_channels", 1)
        for key in ("embed_dim", "depth", "num_heads"):
            if getattr(self, key) is not None:
                _check_int(getattr(self, key), key, 1)
        if self.drop_path_rate is not None and (
            not isinstance(self.drop_path_rate, (int, float))
            or isinstance(self.drop_path_rate, bool)
            or not 0.0 <= self.drop_path_rate < 1.0
        ):
            raise ConfigError(f"drop_path_rate: expected a number in [0, 1), got {self.drop_path_rate!r}")
        if self.knowledge_token is not None:
            _check_int(self.knowledge_token, "knowledge_token", 1)
            if not self.is_vit or self.attention != "full":
                raise ConfigError(f"knowledge_token: needs a ViT with full attention (the token has no place "
                                  f"in a window), got arch {self.arch}, attention {self.attention}")
        if self.is_vit:
            self._validate_vit()
        else:
            self._validate_resnet()
        stride = self.feature_stride
        h, w = self.input_size
        if h % stride or w % stride:
            raise ConfigError(
                f"input_size: expected H and W divisible by the feature stride {stride} of "
                f"{self.arch} (ratio {self.ratio}), got {h}x{w}"
            )

    def _validate_vit(self) -> None:
        if self.arch in (CUSTOM_VIT, CUSTOM_VITAE):
            missing = [k for k in ("embed_dim", "depth", "num_heads") if getattr(self, k) is None]
            if missing:
                kind = "ViT" if self.arch == CUSTOM_VIT else "ViTAE"
                raise ConfigError(f"{missing[0]}: required when arch is '{self.arch}' (a custom {kind})")
        args = self.vit_args()
        if args["embed_dim"] % args["num_heads"]:
            raise ConfigError(
                f"num_heads: expected a divisor of embed_dim {args['embed_dim']}, got {args['num_heads']}"
            )
        if self.attention == "full" and (self.shift or self.pool):
            key = "shift" if self.shift else "pool"
            raise ConfigError(f"{key}: needs attention 'window' or 'vitdet', got attention 'full'")

    def _validate_resnet(self) -> None:
        for key, neutral in (("ratio", 1), ("attention", "full"), ("shift", False), ("pool", False),
                             ("freeze", None), ("embed_dim", None), ("depth", None),
                             ("num_heads", None), ("drop_path_rate", None)):
            if getattr(self, key) != neutral:
                raise ConfigError(
                    f"{key}: not available for the ResNet backbone {self.arch} (expected "
                    f"{neutral!r}, got {getattr(self, key)!r})"
                )
