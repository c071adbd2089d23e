"""The `vitpose-metrics/1` schema of `results/<scale>/<run>/metrics.json` (docs/DEVELOPING.md).

`validate_metrics` checks one parsed document; `load_metrics` reads and checks one file;
`collect_metrics` gathers a scale's files for the report stage. Stages that write metrics.json import
`validate_metrics` to check what they are about to write. Standard library only, on purpose.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vitpose.utils.errors import UserError

SCHEMA = "vitpose-metrics/1"
TABLES = range(2, 11)  # Table 1 is hyper-parameters: no run serves it

# Top-level keys: required ones first, then optional ones (which may be null or absent).
REQUIRED = ("schema", "run", "scale", "synthetic", "serves", "metrics")
OPTIONAL_NUMBERS = ("params_M", "backbone_params_M", "gflops", "trainable_gflops", "train_memory_MB",
                    "wall_time_s")
OPTIONAL_STRINGS = ("config_hash", "git_commit", "dataset", "split", "boxes")
OPTIONAL_OTHER = ("config", "throughput", "per_dataset", "notes", "pretraining")
ALLOWED = set(REQUIRED) | set(OPTIONAL_NUMBERS) | set(OPTIONAL_STRINGS) | set(OPTIONAL_OTHER)
THROUGHPUT_KEYS = {"images_per_s": "number", "device": "string", "batch": "integer", "precision": "string"}


class MetricsError(UserError):
    """A metrics.json file is unreadable or violates the `vitpose-metrics/1` schema."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_fractions(metrics: Any, key: str, fail) -> None:
    if not isinstance(metrics, dict):
        raise fail(key, "an object of metric name -> fraction", metrics)
    for name, value in metrics.items():
        if value is None:
            continue
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            raise fail(f"{key}.{name}", "a fraction in [0, 1] as pycocotools gives it (the report "
                                        "multiplies by 100; use null for an undefined metric, not -1)", value)


def validate_metrics(doc: Any, source: str = "metrics.json") -> dict:
    """Check a parsed metrics document against `vitpose-metrics/1`; return it unchanged.

    Raises MetricsError naming `source` (the file) and the offending key with what was expected.
    """
    def fail(key: str, expected: str, got: Any = ...) -> MetricsError:
        tail = "" if got is ... else f", got {got!r}"
        return MetricsError(f"{source}: key {key!r}: expected {expected}{tail}")

    if not isinstance(doc, dict):
        raise MetricsError(f"{source}: expected a JSON object at the top level, got {type(doc).__name__}")
    for key in REQUIRED:
        if key not in doc:
            raise fail(key, "to be present (required by schema vitpose-metrics/1)")
    unknown = sorted(set(doc) - ALLOWED)
    if unknown:
        raise fail(unknown[0], f"one of the schema's keys ({', '.join(sorted(ALLOWED))}); "
                               "add new keys to docs/DEVELOPING.md and this validator first")
    if doc["schema"] != SCHEMA:
        raise fail("schema", repr(SCHEMA), doc["schema"])
    for key in ("run", "scale"):
        if not isinstance(doc[key], str) or not doc[key]:
            raise fail(key, "a non-empty string", doc[key])
    if not isinstance(doc["synthetic"], bool):
        raise fail("synthetic", "true or false", doc["synthetic"])

    if not isinstance(doc["serves"], list):
        raise fail("serves", 'a list of {"table": N, "row": KEY}', doc["serves"])
    for i, entry in enumerate(doc["serves"]):
        if not isinstance(entry, dict) or set(entry) != {"table", "row"}:
            raise fail(f"serves[{i}]", 'an object with exactly "table" and "row"', entry)
        if isinstance(entry["table"], bool) or entry["table"] not in TABLES:
            raise fail(f"serves[{i}].table", "a table number from 2 to 10", entry["table"])
        if not isinstance(entry["row"], str) or not entry["row"]:
            raise fail(f"serves[{i}].row", "a row key (docs/DEVELOPING.md)", entry["row"])

    _check_fractions(doc["metrics"], "metrics", fail)
    # Multi-dataset runs: each training dataset's own val metrics, through its own decoder.
    per = doc.get("per_dataset")
    if per is not None:
        if not isinstance(per, dict):
            raise fail("per_dataset", "an object of dataset name -> metrics object", per)
        for name, metrics in per.items():
            _check_fractions(metrics, f"per_dataset.{name}", fail)
    pretraining = doc.get("pretraining")
    if pretraining is not None and not (
            isinstance(pretraining, dict) and isinstance(pretraining.get("set"), str)
            and (pretraining.get("images") is None or isinstance(pretraining.get("images"), int))):
        raise fail("pretraining", "an object with the pre-training set (and its image count)", pretraining)
    notes = doc.get("notes")
    if notes is not None and not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        raise fail("notes", "a list of strings", notes)

    for key in OPTIONAL_NUMBERS:
        value = doc.get(key)
        if value is not None and (not _is_number(value) or value < 0):
            raise fail(key, "a non-negative number or null", value)
    for key in OPTIONAL_STRINGS:
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(key, "a string or null", value)
    if doc.get("config") is not None and not isinstance(doc["config"], dict):
        raise fail("config", "an object (the resolved run config) or null", doc["config"])

    tp = doc.get("throughput")
    if tp is not None:
        if not isinstance(tp, dict):
            raise fail("throughput", "an object {images_per_s, device, batch, precision} or null", tp)
        for key in sorted(set(tp) - set(THROUGHPUT_KEYS)):
            raise fail(f"throughput.{key}", f"one of {', '.join(THROUGHPUT_KEYS)}")
        for key, kind in THROUGHPUT_KEYS.items():
            value = tp.get(key)
            if value is None:
                continue
            ok = {"number": _is_number(value) and value > 0,
                  "integer": isinstance(value, int) and not isinstance(value, bool) and value > 0,
                  "string": isinstance(value, str)}[kind]
            if not ok:
                raise fail(f"throughput.{key}", f"a positive {kind} or null" if kind != "string"
                           else "a string or null", value)
    return doc


def _reject_constant(name: str) -> None:
    # Python's json accepts NaN / Infinity; refuse them here rather than print "nan" in a table.
    raise ValueError(f"{name} is not a JSON number")


def load_metrics(path: str | Path) -> dict:
    """Read one metrics.json and validate it; MetricsError names the file and the key at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricsError(f"{path}: cannot read metrics file ({exc})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise MetricsError(f"{path}: not valid JSON ({exc})") from None
    return validate_metrics(doc, str(path))


def collect_metrics(results_dir: str | Path, scale: str) -> list[dict]:
    """Every `<results_dir>/<scale>/**/metrics.json`, validated, sorted by path.

    Each document must declare `scale` equal to `scale` and sit in a directory named after its `run`
    (`results/<scale>/<run>/metrics.json`); run ids are unique. A missing `<results_dir>/<scale>`
    yields an empty list (nothing has run yet). Returned dicts get `_path` (the file) added.
    """
    root = Path(results_dir) / scale
    found: dict[str, dict] = {}
    for path in sorted(root.glob("**/metrics.json")):
        doc = load_metrics(path)
        if doc["scale"] != scale:
            raise MetricsError(f"{path}: key 'scale': expected {scale!r} (the file is under "
                               f"{root}), got {doc['scale']!r}")
        if path.parent.name != doc["run"]:
            raise MetricsError(f"{path}: key 'run': expected {path.parent.name!r} (the directory "
                               f"results/<scale>/<run>/ it sits in), got {doc['run']!r}")
        if doc["run"] in found:
            raise MetricsError(f"{path}: key 'run': run {doc['run']!r} also has "
                               f"{found[doc['run']]['_path']}; a run id must be unique within a scale")
        found[doc["run"]] = dict(doc, _path=str(path))
    return list(found.values())
