"""Validation of params.yaml: unknown keys, wrong types and impossible values fail with the key path.

The schema is data (``SCHEMA`` below) checked by one small recursive function, so the error says exactly
which key is wrong and what was expected, e.g.::

    params.yaml: tables.table5.rows.window.windw: unknown key (expected one of: model, decoder, ...)

It is the one declaration of params.yaml: optional keys get their defaults here (``Mapping.defaults``),
so the registry reads every key it needs without defaults of its own; the vocabularies (decoders,
attention types, precisions, ...) are the engine's own (vitpose.config, vitpose.models.config), so a
value params.yaml accepts is one the engine accepts. Each resolved run is then validated whole, model
included, by the registry (`Registry.validate_runs`) before any job starts.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from vitpose.config import PRECISIONS, PRETRAIN_SETS
from vitpose.models.config import ATTENTIONS, DECODERS, FREEZES
from vitpose.utils.errors import ConfigError

SIZE_RE = re.compile(r"^[1-9][0-9]*x[1-9][0-9]*$")

MODELS = ("vitpose-s", "vitpose-b", "vitpose-l", "vitpose-h", "vitpose-g", "resnet50", "resnet152")
PRETRAIN = (*PRETRAIN_SETS, "none")
DATASETS = ("coco", "aic", "mpii", "crowdpose")


# --- schema building blocks -------------------------------------------------------------------
class Check:
    """A leaf check: ``fn(value) -> None`` or an error string describing what was expected."""

    def __init__(self, expected: str, ok):
        self.expected, self.ok = expected, ok


def one_of(*values) -> Check:
    return Check("one of " + ", ".join(map(str, values)), lambda v: v in values)


def number(lo: float | None = None, hi: float | None = None, integer: bool = False,
           lo_open: bool = False) -> Check:
    kind = "an integer" if integer else "a number"
    bounds = []
    if lo is not None:
        bounds.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        bounds.append(f"<= {hi}")
    expected = kind + (" " + " and ".join(bounds) if bounds else "")

    def ok(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if integer and not isinstance(v, int):
            return False
        if lo is not None and (v <= lo if lo_open else v < lo):
            return False
        return hi is None or v <= hi

    return Check(expected, ok)


BOOL = Check("true or false", lambda v: isinstance(v, bool))
STR = Check("a string", lambda v: isinstance(v, str) and v != "")
SIZE = Check("a size HxW such as 256x192", lambda v: isinstance(v, str) and bool(SIZE_RE.match(v)))
OPT_STR = Check("a string or null", lambda v: v is None or isinstance(v, str))


class ListOf:
    def __init__(self, item, min_len: int = 0):
        self.item, self.min_len = item, min_len


class Mapping:
    """A dict with fixed keys. ``required`` keys must be present; ``values`` validates free-form keys;
    ``defaults`` are filled in for absent optional keys (after validation of the given ones)."""

    def __init__(self, fields: dict | None = None, required: tuple = (), values=None,
                 defaults: dict | None = None):
        self.fields, self.required, self.values = fields or {}, required, values
        self.defaults = defaults or {}


# --- the schema of params.yaml ------------------------------------------------------------------
DISTILL = Mapping({"heatmap": BOOL, "token": BOOL, "teacher": one_of("none", *MODELS)})

# A row gives only what it changes, down to single keys of nested mappings (merged deeply into the
# baseline), so nothing of a row is required; the baseline gives everything.
ROW_DISTILL = Mapping(DISTILL.fields)

ROW_FIELDS = {
    "model": one_of(*MODELS),
    "decoder": one_of(*DECODERS),
    "input": SIZE,
    "ratio": one_of(1, 2),
    "attention": one_of(*ATTENTIONS),
    "window": SIZE,
    "shift": BOOL,
    "pool": BOOL,
    "freeze": one_of("none", *(f for f in FREEZES if f)),
    "pretrain": one_of(*PRETRAIN),
    "datasets": ListOf(one_of(*DATASETS), min_len=1),
    "distill": DISTILL,
    "precision": one_of(*PRECISIONS),
}

HYPER = Mapping(
    {
        "batch_size": number(1, integer=True),
        "lr": number(0, lo_open=True),
        "weight_decay": number(0),
        "layer_decay": number(0, 1, lo_open=True),
        "drop_path_rate": number(0, 1),
        "multi_dataset": Mapping({"batch_size": number(1, integer=True), "lr": number(0, lo_open=True)},
                                 required=("batch_size", "lr")),
    },
    required=("batch_size", "lr", "weight_decay", "layer_decay", "drop_path_rate"),
)

MODEL_STANDIN = Mapping({
    "arch": STR,
    "embed_dim": number(1, integer=True),
    "depth": number(1, integer=True),
    "num_heads": number(1, integer=True),
    "drop_path_rate": number(0, 1),
    "decoder_channels": number(1, integer=True),
}, required=("arch",))

# MAE pre-training (Table 3). The recipe's keys; params.yaml `pretraining` gives them all, a scale's
# `pretraining` overrides some (merged deeply).
PRETRAIN_FIELDS = {
    "epochs": number(1, integer=True),
    "batch_size": number(1, integer=True),
    "blr": number(0, lo_open=True),
    "weight_decay": number(0),
    "betas": ListOf(number(0, 1), min_len=2),
    "warmup_epochs": number(0),
    "min_lr": number(0),
    "input": SIZE,
    "mask_ratio": number(0, 1, lo_open=True),
    "decoder": Mapping({"dim": number(4, integer=True), "depth": number(1, integer=True),
                        "heads": number(1, integer=True)}),
    "norm_pix_loss": BOOL,
    "crop_scale": ListOf(number(0, 1, lo_open=True), min_len=2),
    "hflip": BOOL,
    "drop_path_rate": number(0, 1),
    "crops": Mapping({"padding": number(1), "aspect_ratio": number(0, lo_open=True),
                      "min_size": number(0)}),
}
PRETRAINING = Mapping(PRETRAIN_FIELDS, required=tuple(PRETRAIN_FIELDS))
PRETRAINING_OVERRIDES = Mapping(PRETRAIN_FIELDS)

# Knowledge transfer (Table 8). params.yaml `distillation` gives every key; a scale's `distillation`
# overrides some (merged deeply).
TOKEN_FIELDS = {
    "epochs": number(1, integer=True),
    "lr": number(0, lo_open=True),
    "weight_decay": number(0),
    "warmup_epochs": number(0),
}
DISTILL_FIELDS = {"heatmap_weight": number(0, lo_open=True)}
DISTILLATION = Mapping({**DISTILL_FIELDS, "token": Mapping(TOKEN_FIELDS, required=tuple(TOKEN_FIELDS))},
                       required=("heatmap_weight", "token"))
DISTILLATION_OVERRIDES = Mapping({**DISTILL_FIELDS, "token": Mapping(TOKEN_FIELDS)})

SCALE = Mapping(
    {
        "description": STR,
        "synthetic": BOOL,
        "data_root": STR,
        # Real data only: download what is missing (false: a user's own root, validated in place), and
        # require the full datasets' exact counts (the paper scale; false accepts a subset).
        "download": BOOL,
        "exact_counts": BOOL,
        # datasets: other counts for some datasets (e.g. smaller AIC / MPII / CrowdPose stand-ins, so that
        # a multi-dataset epoch is not several times a COCO one)
        "synthetic_data": Mapping({"seed": number(0, integer=True), "num_train": number(1, integer=True),
                                   "num_val": number(1, integer=True),
                                   "datasets": Mapping(values=Mapping({"num_train": number(1, integer=True),
                                                                       "num_val": number(1, integer=True)}))}),
        "models": Mapping(values=MODEL_STANDIN),
        # The geometry at this scale: every row's input size x this factor (rounded to the backbone's
        # feature stride), its attention window and the UDP target sigma (heatmap pixels) x the same
        # factor, so windows keep their relation to the token grid and the targets their width relative
        # to the person. 1: the paper's sizes. Run ids and tables keep the paper's sizes.
        "input_scale": number(0, 1, lo_open=True),
        "train": Mapping({
            "epochs": number(1, integer=True),
            "batch_size": number(1, integer=True),
            "lr": number(0, lo_open=True),
            # Table 1's layer-wise lr decay in place of each model's (1: none, every layer at the base lr)
            "layer_decay": number(0, 1, lo_open=True),
            "warmup_iters": number(0, integer=True),
            "num_workers": number(0, integer=True),
            # Recompute each block's activations in the backward pass instead of storing them: same
            # results, most activation memory saved, about 30% more compute (a resource switch).
            "activation_checkpointing": BOOL,
            # Decoded images kept in memory per process (MiB; 0: none): a small dataset is decoded once
            # instead of once per sample and epoch (a resource switch: the pixels are the same).
            "image_cache_mb": number(0, integer=True),
            "checkpoint_every_iters": Check("an integer >= 1 or null",
                                            lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)
                                                                    and v >= 1)),
        }, defaults={"num_workers": 4, "checkpoint_every_iters": None, "activation_checkpointing": False,
                     "image_cache_mb": 0}),
        # every_epochs: score the model on val every N epochs during training (the AP points of the
        # training curve; the released configs use 10); null: only the final evaluation.
        "eval": Mapping({"batch_size": number(1, integer=True),
                         "every_epochs": Check("an integer >= 1 or null",
                                               lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)
                                                                       and v >= 1))},
                        defaults={"every_epochs": None}),
        "benchmark": Mapping({"batch": number(1, integer=True), "iters": number(1, integer=True),
                              "warmup": number(0, integer=True)}),
        # How ViTs whose pretrain is imagenet-1k are initialised: released (the MAE authors' weights, as
        # the paper did), ours (MAE pre-training here on the scale's ImageNet), none (random init).
        "imagenet_init": one_of("released", "ours", "none"),
        "pretraining": PRETRAINING_OVERRIDES,
        "distillation": DISTILLATION_OVERRIDES,
    },
    required=("synthetic", "data_root", "models", "train", "eval", "benchmark"),
    defaults={"download": True, "exact_counts": True, "imagenet_init": "released", "pretraining": {},
              "input_scale": 1,
              "distillation": {},
              "description": ""},
)

ROW = Mapping({**ROW_FIELDS, "distill": ROW_DISTILL})
# test_dev: the table's rows are COCO test-dev submissions (Table 10): a row is the model of its spec,
# or, with `members`, the ensemble of its member specs (each merged into the baseline like a row).
# shows_released: the table shows the authors' released checkpoints (top-level `released`) evaluated
# here beside ours, on the rows whose spec they have.
TABLE = Mapping({"title": STR, "studies": STR, "test_dev": BOOL, "shows_released": BOOL,
                 "rows": Mapping(values=Mapping({**ROW.fields, "members": ListOf(ROW, min_len=2)}))},
                required=("title", "rows"), defaults={"test_dev": False, "shows_released": False})

SCHEMA = Mapping(
    {
        "scale": STR,
        # Seed repeats: every table row runs once per seed (data order, augmentation, init); tables
        # show mean ± std over the seeds whose runs finished. The first seed's runs keep plain ids.
        "seeds": Check("a list of distinct integers >= 0, at least one",
                       lambda v: isinstance(v, list) and len(v) >= 1 and len(set(v)) == len(v) and all(
                           isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v)),
        "baseline": Mapping(ROW_FIELDS, required=tuple(ROW_FIELDS)),
        "hyperparameters": Mapping(values=HYPER),
        "schedule": Mapping({
            "epochs": number(1, integer=True),
            "milestones": ListOf(number(1, integer=True)),
            "gamma": number(0, 1, lo_open=True),
            "warmup_iters": number(0, integer=True),
            "warmup_ratio": number(0, 1),
            "grad_clip": number(0),
            "betas": ListOf(number(0, 1), min_len=2),
        }, required=("epochs", "milestones", "gamma", "warmup_iters", "warmup_ratio", "grad_clip", "betas")),
        "evaluation": Mapping({
            "flip_test": BOOL,
            "boxes": one_of("detected", "gt"),
            "nms_threshold": number(0, 1),
            "rescore_threshold": number(0, 1),
            "sigma": number(0, lo_open=True),
        }, required=("flip_test", "boxes", "nms_threshold", "rescore_threshold", "sigma")),
        # Multi-dataset training (Table 7): how a batch mixes the datasets. ratios null: instances drawn
        # uniformly from the union (datasets in proportion to their sizes); else {dataset: weight}.
        "multi_dataset": Mapping({"ratios": Check(
            "null or a mapping of dataset names (coco, aic, mpii, crowdpose) to positive numbers",
            lambda v: v is None or (isinstance(v, dict) and v and all(
                k in DATASETS and isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0
                for k, w in v.items())))}, defaults={"ratios": None}),
        "pretraining": PRETRAINING,
        "distillation": DISTILLATION,
        "scales": Mapping(values=SCALE),
        "tables": Mapping(values=TABLE),
        # The authors' released checkpoints evaluated here (Tables 2 and 9 "released"): manifest item
        # name (vitpose/download/manifest.yaml) -> what it holds, in paper terms like a row's spec.
        "released": Mapping(values=ROW),
    },
    required=("scale", "seeds", "baseline", "hyperparameters", "schedule", "evaluation", "pretraining",
              "distillation",
              "scales", "tables"),
    defaults={"multi_dataset": {"ratios": None}, "released": {}},
)


def _validate(value: Any, schema, path: str, where: str) -> None:
    def fail(msg: str) -> None:
        raise ConfigError(f"{where}: {path or '<top level>'}: {msg}")

    if isinstance(schema, Check):
        if not schema.ok(value):
            fail(f"expected {schema.expected}, got {value!r}")
    elif isinstance(schema, ListOf):
        if not isinstance(value, list):
            fail(f"expected a list, got {value!r}")
        if len(value) < schema.min_len:
            fail(f"expected a list of at least {schema.min_len} item(s), got {value!r}")
        for i, item in enumerate(value):
            _validate(item, schema.item, f"{path}[{i}]", where)
    elif isinstance(schema, Mapping):
        if not isinstance(value, dict):
            fail(f"expected a mapping, got {value!r}")
        for key in schema.required:
            if key not in value:
                fail(f"missing required key '{key}'")
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in schema.fields:
                _validate(item, schema.fields[key], sub, where)
            elif schema.values is not None:
                _validate(item, schema.values, sub, where)
            else:
                raise ConfigError(f"{where}: {sub}: unknown key (expected one of: "
                                  f"{', '.join(schema.fields)})")
        for key, default in schema.defaults.items():
            value.setdefault(key, copy.deepcopy(default))
    else:  # pragma: no cover - schema programming error
        raise TypeError(schema)


def _check_consistency(params: dict, where: str) -> None:
    """Cross-key rules a per-key schema cannot express."""
    if params["scale"] not in params["scales"]:
        raise ConfigError(f"{where}: scale: expected one of {', '.join(params['scales'])}, "
                          f"got {params['scale']!r}")
    sched = params["schedule"]
    ms = sched["milestones"]
    if ms != sorted(ms) or any(m >= sched["epochs"] for m in ms):
        raise ConfigError(f"{where}: schedule.milestones: expected increasing epochs below "
                          f"schedule.epochs={sched['epochs']}, got {ms}")
    models_used = {params["baseline"]["model"]}
    for tname, table in params["tables"].items():
        if not re.fullmatch(r"table(10|[1-9])", tname):
            raise ConfigError(f"{where}: tables.{tname}: expected a table name table1 .. table10")
        for rname, row in table["rows"].items():
            if "members" in row and (len(row) > 1 or not table["test_dev"]):
                raise ConfigError(f"{where}: tables.{tname}.rows.{rname}.members: an ensemble's members are "
                                  f"the whole row (no other key beside them) and only in a test_dev table")
            for spec in row.get("members", [row]):
                models_used.add(spec.get("model", params["baseline"]["model"]))
                teacher = spec.get("distill", {}).get("teacher", "none")
                if teacher != "none":
                    models_used.add(teacher)
    models_used |= {spec.get("model", params["baseline"]["model"]) for spec in params["released"].values()}
    for m in sorted(models_used):
        if m not in params["hyperparameters"]:
            raise ConfigError(f"{where}: hyperparameters: missing an entry for model '{m}', "
                              "which a table uses")


def _scalar(text: str) -> Any:
    """A scalar typed as YAML would type it: 3 -> int, 0.002 and 1e-3 -> float, true -> bool, null."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float, type(None))) else text


def coerce_overrides(config: Any, reference: Any) -> Any:
    """Type the string leaves of Snakemake's `--config` overrides.

    Snakemake parses a nested `--config 'scales={smoke: {train: {lr: 0.002}}}'` with YAML's BaseLoader,
    which leaves every nested scalar a string ('0.002', 'true'). A string leaf is re-read as a YAML
    scalar unless params.yaml itself has a string there (`input: 256x192` stays a string), so nested
    overrides mean what they would mean in params.yaml. `reference` is params.yaml as loaded.
    """
    if isinstance(config, dict):
        ref = reference if isinstance(reference, dict) else {}
        return {k: coerce_overrides(v, ref.get(k)) for k, v in config.items()}
    if isinstance(config, list):
        ref = reference if isinstance(reference, list) else []
        return [coerce_overrides(v, ref[i] if i < len(ref) else None) for i, v in enumerate(config)]
    if isinstance(config, str) and not isinstance(reference, str):
        return _scalar(config)
    return config


def validate_params(params: Any, where: str = "params.yaml") -> dict:
    """Validate an already-loaded parameter dict (e.g. Snakemake's config after --config overrides)."""
    _validate(params, SCHEMA, "", where)
    _check_consistency(params, where)
    return params


def load_params(path: str | Path = "params.yaml") -> dict:
    """Read and validate params.yaml; raise ConfigError naming the file and key on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the parameter file ({e.strerror})") from e
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    return validate_params(params, str(path))
