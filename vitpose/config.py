"""The resolved configuration of one run: model, data, training and evaluation settings.

`workflow/registry.py` expands `params.yaml` into one such config per run, once, and the DAG writes it
to `results/<scale>/<run>/config.json` (with its `config_hash`); every stage command reads that file and
nothing else for its run, its output paths included (`RunConfig.paths`). Every section is a dataclass with `from_dict` (validating: an unknown key, a
wrong type or an impossible value raises ConfigError naming the key path, e.g.
`train.lr: expected a positive number, got -1`) and `to_dict` (the canonical, fully resolved form
that is hashed into `metrics.json`).

Learning rate: `train.lr` is the rate used for a total batch of `train.batch_size` images (paper
Table 1: 5e-4 for 512); the trainer applies no scaling rule, so a scale that changes the batch size
sets its own lr (params.yaml `scales.<s>.train`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from vitpose.models.config import ModelConfig
from vitpose.utils.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]

# auto: bf16 autocast on GPU, fp32 on CPU; fp16 adds gradient scaling (Table 5's full-attention row).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ----------------------------------------------------------------------------------------------
# Generic dict -> dataclass conversion with key-path error messages.

def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        none = " or null" if type(None) in typing.get_args(tp) else ""
        return " or ".join(parts) + none
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values"
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _fail(path: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(f"{path}: expected {_describe(tp)}, got {_show(value)}")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check `value` against the type annotation `tp` and return it in canonical form."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _fail(path, tp, value)
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error says what is wrong inside the value
            return _convert(value, options[0], path)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ConfigError:
                continue
        raise _fail(path, tp, value)
    if origin is Literal:
        if value in args:
            return value
        raise _fail(path, tp, value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(path, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(path, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(path, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise _fail(path, tp, value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(path, tp, value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _fail(path, tp, value)
            return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _fail(path, tp, value)
        return dict(value)
    raise TypeError(f"{path}: unsupported annotation {tp!r}")  # a bug in this module, not user input


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking keys and types; `path` prefixes error keys.

    A dataclass with its own `from_dict(data)` classmethod (e.g. ModelConfig) converts itself; a
    dataclass with `validate(path)` checks its values after conversion.
    """
    where = path or "config"
    if isinstance(data, cls):
        data = to_dict(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    own = getattr(cls, "from_dict", None)
    if own is not None and not issubclass(cls, Section):
        try:
            return own(dict(data))
        except ConfigError as exc:
            msg = str(exc)
            raise ConfigError(msg if msg.startswith(f"{where}.") else f"{where}.{msg}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            f"{_join(path, str(unknown[0]))}: unknown key (expected one of {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if hasattr(obj, "validate"):
        obj.validate(path)
    return obj


def to_dict(obj: Any) -> Any:
    """Plain JSON-able form of a config (dataclasses → dicts, tuples → lists, paths → strings)."""
    own = getattr(obj, "to_dict", None)
    if dataclasses.is_dataclass(obj) and own is not None and not isinstance(obj, Section):
        return to_dict(own())
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A value as the user wrote it: -1.0 read from `-1` shows as -1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _positive(path: str, key: str, value: float | int | None, allow_zero: bool = False) -> None:
    ok = value is not None and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        what = "a non-negative number" if allow_zero else "a positive number"
        raise ConfigError(f"{_join(path, key)}: expected {what}, got {_show(value)}")


# ----------------------------------------------------------------------------------------------
# The sections.

class Section:
    """`from_dict` / `to_dict` of a config section dataclass (its `validate(path)` checks values)."""

    @classmethod
    def from_dict(cls, data: Any, path: str = ""):
        return from_dict(cls, data, path)

    def to_dict(self) -> dict:
        return {f.name: to_dict(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass
class DataConfig(Section):
    """Where the top-down data lives. Every path is relative to the repository root unless absolute
    (`root` is the dataset directory, the others its files, e.g. `data/smoke/coco/train2017`)."""

    root: str
    train_ann: str
    train_images: str
    val_ann: str
    val_images: str
    det_file: str | None = None
    dataset: str = "coco"
    keypoints: str = "coco"
    sigma: float = 2.0
    use_gt_boxes_for_eval: bool = False
    num_workers: int = 2
    gt_mat: str | None = None  # MPII: mpii_gt_val.mat, the ground truth PCKh is computed against
    # Multi-dataset training: this dataset's share of the sampled instances (weights, normalised over
    # the run's datasets); null for every dataset = in proportion to their sizes (uniform over the union).
    ratio: float | None = None

    def validate(self, path: str) -> None:
        _positive(path, "sigma", self.sigma)
        if self.ratio is not None:
            _positive(path, "ratio", self.ratio)
        if self.num_workers < 0:
            raise ConfigError(f"{_join(path, 'num_workers')}: expected ≥ 0, got {self.num_workers}")
        if not self.use_gt_boxes_for_eval and not self.det_file:
            raise ConfigError(
                f"{_join(path, 'det_file')}: required unless "
                f"{_join(path, 'use_gt_boxes_for_eval')} is true"
            )

    def resolve(self, name: str) -> Path:
        """Absolute path of `root` or of one of the file fields (e.g. `resolve('val_ann')`)."""
        value = getattr(self, name)
        if value is None:
            raise ConfigError(f"data.{name}: not set")
        return resolve_path(value)


@dataclass
class TrainConfig(Section):
    """Optimisation settings (defaults: paper Table 1, ViTPose-B)."""

    epochs: int = 210
    batch_size: int = 512  # total over all processes
    lr: float = 5e-4  # for a total batch of batch_size images (no scaling rule)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    layer_decay: float = 0.75
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    # Epochs (fractions allowed: a shortened schedule keeps 170/210 and 200/210 of the run); null →
    # those paper fractions of `epochs`.
    milestones: list[float] | None = None
    gamma: float = 0.1
    grad_clip: float | None = 1.0  # max gradient L2 norm; null disables clipping
    # auto: bf16 autocast on GPU, fp32 on CPU; fp16 adds gradient scaling.
    precision: Literal[PRECISIONS] = "auto"
    checkpoint_every_epochs: int = 1
    log_every_iters: int = 50
    # Also save the resumable state every N iterations (bounds the work a kill -9 / node loss can
    # cost to N iterations); null → only at epoch ends. Not part of the state's identity: it may
    # change between the segments of a run.
    checkpoint_every_iters: int | None = None
    # The lr schedule: "step" (finetuning: linear warm-up over warmup_iters, then x gamma at the
    # milestones) or "cosine" (MAE pre-training: linear warm-up from 0 over warmup_epochs, then a
    # half-cycle cosine down to min_lr). Either is updated every iteration.
    lr_schedule: Literal["step", "cosine"] = "step"
    warmup_epochs: float | None = None  # cosine: warm-up length in epochs (null -> warmup_iters)
    min_lr: float = 0.0  # cosine: the lr at the end of the run
    # Recompute each transformer block's activations in the backward pass instead of keeping them
    # (torch.utils.checkpoint): training memory drops by most of the activations for ~30 % more
    # compute; the results are the same.
    activation_checkpointing: bool = False
    # Keep up to this many MiB of decoded images in memory in each process (0: none): a small dataset
    # is then decoded once, not once per sample and epoch. The pixels, and so the results, are the same.
    image_cache_mb: int = 0
    # Score the model on the val split every N epochs during training (AP in the training curve; the
    # released configs evaluate every 10 epochs); null: only the final evaluation (stages.evaluate).
    # Not part of the state's identity: it does not change the weights.
    val_every_epochs: int | None = None

    def validate(self, path: str) -> None:
        if self.image_cache_mb < 0:
            raise ConfigError(f"{_join(path, 'image_cache_mb')}: expected an integer >= 0 (MiB), "
                              f"got {_show(self.image_cache_mb)}")
        for key in ("epochs", "batch_size", "checkpoint_every_epochs", "log_every_iters"):
            value = getattr(self, key)
            if value < 1:
                raise ConfigError(f"{_join(path, key)}: expected a positive integer, got {_show(value)}")
        if self.val_every_epochs is not None and self.val_every_epochs < 1:
            raise ConfigError(f"{_join(path, 'val_every_epochs')}: expected a positive integer or null, "
                              f"got {_show(self.val_every_epochs)}")
        if self.checkpoint_every_iters is not None and self.checkpoint_every_iters < 1:
            raise ConfigError(f"{_join(path, 'checkpoint_every_iters')}: expected a positive integer or "
                              f"null, got {_show(self.checkpoint_every_iters)}")
        _positive(path, "lr", self.lr)
        _positive(path, "weight_decay", self.weight_decay, allow_zero=True)
        _positive(path, "warmup_iters", self.warmup_iters, allow_zero=True)
        _positive(path, "min_lr", self.min_lr, allow_zero=True)
        if self.warmup_epochs is not None:
            _positive(path, "warmup_epochs", self.warmup_epochs, allow_zero=True)
            if self.warmup_epochs >= self.epochs:
                raise ConfigError(f"{_join(path, 'warmup_epochs')}: expected fewer than the run's "
                                  f"{self.epochs} epochs, got {_show(self.warmup_epochs)}")
        if self.min_lr >= self.lr:
            raise ConfigError(f"{_join(path, 'min_lr')}: expected less than lr {_show(self.lr)}, "
                              f"got {_show(self.min_lr)}")
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise ConfigError(f"{_join(path, 'betas')}[{i}]: expected a number in [0, 1), got {_show(b)}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ConfigError(
                f"{_join(path, 'layer_decay')}: expected a number in (0, 1], got {_show(self.layer_decay)}"
            )
        if not 0.0 < self.warmup_ratio <= 1.0:
            raise ConfigError(
                f"{_join(path, 'warmup_ratio')}: expected a number in (0, 1], got {_show(self.warmup_ratio)}"
            )
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"{_join(path, 'gamma')}: expected a number in (0, 1], got {_show(self.gamma)}")
        if self.grad_clip is not None:
            _positive(path, "grad_clip", self.grad_clip)
        if self.milestones is None and self.lr_schedule == "step":
            from vitpose.engine.schedule import default_milestones

            self.milestones = default_milestones(self.epochs)
        for i, m in enumerate(self.milestones or []):
            if not (math.isfinite(m) and 0 < m <= self.epochs):
                raise ConfigError(
                    f"{_join(path, 'milestones')}[{i}]: expected an epoch in (0, {self.epochs}], got {_show(m)}"
                )
        if self.milestones and list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"{_join(path, 'milestones')}: expected increasing epochs, got {self.milestones}")


@dataclass
class EvalConfig(Section):
    flip_test: bool = True
    batch_size: int = 64
    nms_threshold: float = 0.9  # OKS-NMS
    rescore_threshold: float = 0.2  # keypoint scores above it count in the instance score

    def validate(self, path: str) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"{_join(path, 'batch_size')}: expected a positive integer, got {_show(self.batch_size)}")
        for key in ("nms_threshold", "rescore_threshold"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{_join(path, key)}: expected a number in [0, 1], got {_show(value)}")


# MAE pre-training sets of Table 3 and the datasets each is built from (vitpose/data/pretrain.py builds
# their image indexes; the registry their DAG steps).
PRETRAIN_SOURCES: dict[str, tuple[str, ...]] = {
    "imagenet-1k": ("imagenet",),
    "coco-crop": ("coco",),
    "coco+aic-crop": ("coco", "aic"),
    "coco+aic-nocrop": ("coco", "aic"),
}
PRETRAIN_SETS = tuple(PRETRAIN_SOURCES)


@dataclass
class PretrainConfig(Section):
    """MAE pre-training of the ViT backbone (He et al. 2022; ViTPose §3.3, Table 3).

    The run's `model` is the encoder (its `input_size` the pre-training resolution, full attention,
    ratio 1); these keys are the rest of MAE: the images, the masking, the decoder, the loss and the
    augmentation. A run with this section has no `data` (no keypoints are read).
    """

    set: Literal[PRETRAIN_SETS]
    index: str  # the set's image index (JSON, written by stages.pretrain_data), relative to the repo
    mask_ratio: float = 0.75  # fraction of the patches removed per image
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    norm_pix_loss: bool = True  # targets: each patch normalised by its own mean and variance
    crop_scale: tuple[float, float] = (0.2, 1.0)  # RandomResizedCrop area fraction
    hflip: bool = True
    num_workers: int = 2  # data loader processes

    def validate(self, path: str) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"{_join(path, 'mask_ratio')}: expected a number in (0, 1), got "
                              f"{_show(self.mask_ratio)}")
        for key in ("decoder_dim", "decoder_depth", "decoder_heads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{_join(path, key)}: expected a positive integer, got {getattr(self, key)}")
        if self.decoder_dim % self.decoder_heads or self.decoder_dim % 4:
            raise ConfigError(f"{_join(path, 'decoder_dim')}: expected a multiple of 4 and of decoder_heads "
                              f"{self.decoder_heads}, got {self.decoder_dim}")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"{_join(path, 'crop_scale')}: expected 0 < min <= max <= 1, got {[lo, hi]}")
        if self.num_workers < 0:
            raise ConfigError(f"{_join(path, 'num_workers')}: expected ≥ 0, got {self.num_workers}")

    def resolve(self, name: str = "index") -> Path:
        return resolve_path(getattr(self, name))


DISTILL_JOBS = ("token", "student")


@dataclass
class DistillConfig(Section):
    """Knowledge transfer from a teacher (paper §3.4, Eq. 4-6, Table 8).

    job "token": train the knowledge token on the frozen teacher (Eq. 5); the run's `model` is the
    teacher's architecture and only the token is trained. job "student": train the run's model with
    `heatmap` (Eq. 4: the teacher's heatmaps as a second target, weighted by `heatmap_weight`) and / or
    `token` (Eq. 6: the frozen token of `token_file` in front of the student's patch tokens).
    """

    job: Literal[DISTILL_JOBS]
    teacher_model: dict  # the teacher's ModelConfig (its architecture; weights from teacher_checkpoint)
    teacher_checkpoint: str | None = None  # the teacher's weights (released format); token job, heatmap
    heatmap: bool = False
    heatmap_weight: float = 1.0  # weight of MSE(student, teacher) next to the ground-truth loss
    token: bool = False
    token_file: str | None = None  # a token run's output; student with `token`

    def validate(self, path: str) -> None:
        from vitpose.models.config import ModelConfig

        try:
            teacher = ModelConfig.from_dict(self.teacher_model)
        except ConfigError as exc:
            raise ConfigError(f"{_join(path, 'teacher_model')}.{exc}") from None
        if self.job == "token" and (not teacher.is_vit or teacher.attention != "full"):
            raise ConfigError(f"{_join(path, 'teacher_model')}: a knowledge token needs a ViT teacher with "
                              f"full attention, got arch {teacher.arch}, attention {teacher.attention}")
        needs_teacher = self.job == "token" or self.heatmap
        if needs_teacher and not self.teacher_checkpoint:
            raise ConfigError(f"{_join(path, 'teacher_checkpoint')}: required for "
                              f"{'token training' if self.job == 'token' else 'heatmap distillation'}")
        if self.job == "student":
            if not (self.heatmap or self.token):
                raise ConfigError(f"{path}: a student distils its teacher's heatmaps, its token or both; "
                                  f"got heatmap false and token false")
            if self.token and not self.token_file:
                raise ConfigError(f"{_join(path, 'token_file')}: required with token true")
        _positive(path, "heatmap_weight", self.heatmap_weight)

    def teacher(self):
        from vitpose.models.config import ModelConfig

        return ModelConfig.from_dict(self.teacher_model)

    def resolve(self, name: str) -> Path:
        return resolve_path(getattr(self, name))


# File names inside a run's result directory: the one place they are spelt (the registry declares the
# job kinds that produce them, the stages write them).
RUN_FILES = {
    "config": "config.json",
    "checkpoint": "model.pth",
    "benchmark": "benchmark.json",
    "metrics": "metrics.json",
    "keypoints": "results_keypoints.json",
    "unavailable": "unavailable.json",
    "mae": "mae_pretrain.pth",  # a pre-training run's encoder + decoder, in MAE's file format
    "token": "knowledge_token.pth",  # a token-training run's knowledge token (paper Eq. 5)
    # Training curves (CSV from the training log: iter, epoch, loss, lr, ..., val_AP where validated),
    # one name per training kind (a file name belongs to one kind of job)
    "curve": "train_curve.csv",
    "mae_curve": "mae_curve.csv",
    "token_curve": "token_curve.csv",
    # A COCO test-dev run (Table 10, docs/VITPOSE_G.md): the submission for the evaluation server (the
    # results file and the zip holding it; the `[alg]` field of the server's file name is "vitpose",
    # vitpose.evaluation.testdev.DEFAULT_NAME), the same model(s) on COCO val (results, metrics.json-
    # schema record), the record of what was submitted, and the server's scores, placed by hand.
    "testdev_results": "person_keypoints_test-dev2017_vitpose_results.json",
    "testdev_zip": "person_keypoints_test-dev2017_vitpose_results.zip",
    "val_keypoints": "val_results_keypoints.json",
    "val_metrics": "val_metrics.json",
    "testdev_record": "testdev_submission.json",
    "server_scores": "testdev_server_scores.json",
}


@dataclass
class RunPaths(Section):
    """Where a run's files live: declared outputs under `result_dir`, resumable state in `work_dir`
    (deliberately not a declared output: workflow tools delete those before a job re-runs)."""

    result_dir: str
    work_dir: str

    @classmethod
    def for_run(cls, scale: str, run: str) -> "RunPaths":
        return cls(result_dir=f"results/{scale}/{run}", work_dir=f"work/{scale}/{run}")

    def file(self, name: str) -> str:
        """The path of one of the run's files, by its RUN_FILES key (e.g. `file('metrics')`)."""
        return f"{self.result_dir}/{RUN_FILES[name]}"

    def resolve(self, name: str) -> Path:
        """Absolute path of a run file (`file(name)`) or of `work_dir` / `result_dir`."""
        return resolve_path(getattr(self, name) if name in ("result_dir", "work_dir") else self.file(name))


@dataclass
class RunConfig(Section):
    """One run: `RunConfig.from_dict(json.load(f))`, `cfg.to_dict()` for metrics.json and hashing."""

    run: str
    scale: str
    model: ModelConfig
    data: DataConfig | None = None  # the keypoint data (every run but MAE pre-training)
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    serves: list[dict] = field(default_factory=list)  # [{"table": 2, "row": "vitpose-b/classic"}, ...]
    pretrained: str | None = None  # backbone initialisation (MAE / ViTPose checkpoint); null → random
    spec: dict | None = None  # the registry's paper-terms description of the run (informational)
    benchmark: dict | None = None  # settings of the benchmark stage (not used by the engine)
    unavailable: str | None = None  # why the registry cannot produce this run yet (stages refuse it)
    # Trains and evaluates on generated data (params.yaml `scales.<s>.synthetic`): its numbers are
    # labelled synthetic everywhere and never compared with the paper's as a reproduction.
    synthetic: bool = False
    paths: RunPaths | None = None  # null -> RunPaths.for_run(scale, run)
    upstream: dict = field(default_factory=dict)  # {role: run id} of the runs this run consumes
    # Multi-dataset training (paper §3.3, Table 7): further datasets trained with the shared backbone,
    # one decoder each (decoder 0 is `data`'s, decoder i + 1 is extra_data[i]'s).
    extra_data: list[DataConfig] = field(default_factory=list)
    # MAE pre-training run (Table 3): what it reads and how it masks; null for every other run.
    pretraining: PretrainConfig | None = None
    # Knowledge transfer (Table 8): token training on a teacher, or a student of a teacher; null otherwise.
    distill: DistillConfig | None = None

    @property
    def datasets(self) -> list[DataConfig]:
        """Every training dataset in decoder order: `data` first, then `extra_data` (none when
        pre-training)."""
        return [] if self.data is None else [self.data, *self.extra_data]

    def validate(self, path: str) -> None:
        if not self.run:
            raise ConfigError(f"{_join(path, 'run')}: expected a non-empty run id")
        if not self.scale:
            raise ConfigError(f"{_join(path, 'scale')}: expected a non-empty scale name")
        if self.seed < 0:
            raise ConfigError(f"{_join(path, 'seed')}: expected a non-negative integer, got {self.seed}")
        for i, s in enumerate(self.serves):
            if set(s) != {"table", "row"}:
                raise ConfigError(f"{_join(path, 'serves')}[{i}]: expected keys 'table' and 'row', got {sorted(s)}")
        if self.paths is None:
            self.paths = RunPaths.for_run(self.scale, self.run)
        # A config without a train section (an evaluation-only run) gets the defaults, resolved like a
        # given section (milestones filled in), so that its hash is the same once written and re-read.
        self.train.validate(_join(path, "train"))
        if self.pretraining is None and self.data is None:
            raise ConfigError(f"{_join(path, 'data')}: required key is missing")
        if self.pretraining is not None:
            self._validate_pretraining(path)
        if self.distill is not None:
            self._validate_distill(path)
        names = [d.dataset for d in self.datasets]
        if len(set(names)) != len(names):
            raise ConfigError(f"{_join(path, 'extra_data')}: each dataset at most once, got {names}")
        if len({d.ratio is None for d in self.datasets}) > 1:
            raise ConfigError(f"{_join(path, 'extra_data')}: give a ratio for every dataset or for none")
        oversized = self.model.oversized_window()
        if oversized:
            raise ConfigError(f"{_join(path, 'model.window_size')}: {oversized}")

    def _validate_pretraining(self, path: str) -> None:
        """An MAE run reads images, not keypoints, and its encoder must be a plain 1/16 ViT."""
        if self.data is not None or self.extra_data:
            raise ConfigError(f"{_join(path, 'data')}: a pre-training run reads `pretraining.index`, "
                              f"not keypoint data; remove `data`")
        m, key = self.model, _join(path, "model")
        if not m.is_vit or m.attention != "full" or m.ratio != 1:
            raise ConfigError(f"{key}: MAE pre-trains a plain ViT (full attention, ratio 1), got arch "
                              f"{m.arch}, attention {m.attention}, ratio {m.ratio}")
        if m.is_vitae:
            # MAE's encoder sees only the kept 25% of the patches: no token grid is left for the
            # ViTAE block's convolution branch (models/vitae.py refuses such inputs).
            raise ConfigError(f"{key}.arch: MAE pre-training of a ViTAE backbone ({m.arch}, ViTPose-G) is not "
                              f"supported: its convolution branch needs the whole token grid, which masking "
                              f"removes; start ViTPose-G from the ViTAE-G weights (imagenet_init: released, "
                              f"the manual item vitae-g) or from random weights (imagenet_init: none)")
        if m.input_size[0] != m.input_size[1]:
            # MAE files carry a square n x n position grid (the released ones 14 x 14), which is what
            # the loader resizes to a finetuning input
            raise ConfigError(f"{key}.input_size: MAE pre-training images are square, got "
                              f"{m.input_size[0]}x{m.input_size[1]}")

    def _validate_distill(self, path: str) -> None:
        d, key = self.distill, _join(path, "distill")
        if self.pretraining is not None or self.extra_data:
            raise ConfigError(f"{key}: distillation trains on one keypoint dataset (no pre-training, no "
                              f"extra_data)")
        if d.job == "token" and self.model.to_dict() != d.teacher().to_dict():
            raise ConfigError(f"{_join(path, 'model')}: a token-training run's model is its teacher's "
                              f"architecture (distill.teacher_model)")
        width = self.model.knowledge_token
        teacher_dim = d.teacher().vit_args().get("embed_dim") if d.teacher().is_vit else None
        if d.job == "student" and d.token and width != teacher_dim:
            raise ConfigError(f"{_join(path, 'model.knowledge_token')}: expected the teacher's width "
                              f"{teacher_dim} (the token's), got {width}")
        if d.job == "student" and not d.token and width is not None:
            raise ConfigError(f"{_join(path, 'model.knowledge_token')}: a student without token "
                              f"distillation has none, got {width}")
        if d.heatmap and d.teacher().heatmap_size != self.model.heatmap_size:
            raise ConfigError(f"{_join(path, 'distill.teacher_model.input_size')}: the teacher's heatmaps "
                              f"must match the student's ({d.teacher().input_size} vs {self.model.input_size})")

    @property
    def hash(self) -> str:
        """The run's identity: `config_hash` of its canonical form (metrics.json, state, checkpoint)."""
        return config_hash(self.to_dict())


def resolve_path(path: str | os.PathLike) -> Path:
    """A config path: absolute as given, else relative to the repository root."""
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def config_hash(config: Mapping) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace) of a config dict."""
    text = json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_config_file(path: str | os.PathLike) -> dict:
    """Parse a JSON or YAML file into a dict; ConfigError names the file on failure."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_run_config_file(path: str | os.PathLike) -> RunConfig:
    """Read and validate a run config; errors read `<file>: <key path>: <problem>`.

    A resolved `config.json` (written by the DAG, `run_config_document`) carries its `config_hash`; a
    file whose content no longer matches its hash was edited by hand and is refused, since the hash
    is what metrics.json and the training state are checked against. A hand-written config without
    the key is accepted.
    """
    data = read_config_file(path)
    stored = data.pop("config_hash", None)
    try:
        cfg = RunConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if stored is not None and stored != cfg.hash:
        raise ConfigError(f"{path}: config_hash: the file was changed after it was resolved (stored "
                          f"{str(stored)[:12]}…, content {cfg.hash[:12]}…); resolve it again "
                          "(snakemake / dvc repro rewrite it) rather than editing it")
    return cfg


def run_config_document(cfg: RunConfig) -> dict:
    """The content of a run's `config.json`: the canonical config and its hash."""
    return {**cfg.to_dict(), "config_hash": cfg.hash}
