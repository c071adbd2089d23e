"""Prepare one manifest item under a data root and write its completion marker last.

Paper scale: download (or check the user's manual copy), verify, unpack safely, validate the layout and counts.
Smoke scale: call the synthetic generator named in the manifest instead. Either way the marker
(``<data-root>/<dest>/.complete.json``, see ``marker_path``) is written atomically at the very end, so the DAG can
depend on one file per item, and an item whose marker matches the manifest is skipped without network access.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib
import inspect
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vitpose.download.archive import extract_archive
from vitpose.download.checksums import ChecksumLock
from vitpose.download.fetch import FetchOptions, fetch
from vitpose.download.manifest import Extract, Item, Source
from vitpose.download.manual import ManualItemMissing, check_manual, instructions, manual_archive_path, \
    manual_target
from vitpose.download.validate import validate_item
from vitpose.utils.errors import ConfigError, UserError
from vitpose.utils.io import atomic_write_json

MARKER_SCHEMA = "vitpose-download-marker/1"
SCALES = ("paper", "smoke")
SYNTHETIC_MODULE = "vitpose.data.synthetic"
SYNTHETIC_SENTINEL = ".synthetic"  # written into generated trees so that they may be replaced later


@dataclass
class PrepareOptions:
    data_root: Path
    scale: str = "paper"
    url_overrides: Mapping[str, Sequence[str]] = field(default_factory=dict)
    fetch: FetchOptions = field(default_factory=FetchOptions)
    keep_archives: bool = False
    force: bool = False                                            # ignore markers and per-archive records
    smoke_params: Mapping[str, Any] = field(default_factory=dict)  # passed to the synthetic generator
    in_place: bool = False      # real data already under data_root (a user's own root): never download
    exact_counts: bool = True   # compare the measured counts with the full dataset's (the manifest's)


@dataclass(frozen=True)
class PrepareResult:
    item: str
    status: str  # "skipped" (marker already matched) or "prepared"
    marker: Path


def marker_path(data_root: str | Path, item: Item) -> Path:
    """The one file the DAG depends on for ``item``: ``<data-root>/<dest>/.complete.json`` (items that share a
    ``dest``, the weights, use ``.<item>.complete.json``)."""
    return Path(data_root) / item.marker


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == MARKER_SCHEMA else None


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def spec_hash(item: Item, scale: str, smoke_params: Mapping[str, Any], mode: str = "") -> str:
    """What the marker must have been written for: the manifest's content spec, or the smoke parameters.

    `mode` distinguishes the checks of real data (in place, any counts) from the default download with
    the full counts, which keeps the manifest's own hash."""
    if scale == "paper":
        return item.spec_hash() if not mode else _sha({"spec": item.spec_hash(), "mode": mode})
    return _sha({"smoke": item.smoke, "dest": item.dest, "params": dict(smoke_params),
                 "validate": [asdict(v) for v in item.validate]})


def _mode(opts: PrepareOptions) -> str:
    return "+".join(m for m, on in (("in-place", opts.in_place), ("any-counts", not opts.exact_counts)) if on)


def item_status(item: Item, opts: PrepareOptions) -> str:
    """``complete``, ``stale`` (marker from another manifest/parameters/scale) or ``missing`` — no network."""
    marker = read_marker(marker_path(opts.data_root, item))
    if marker is None:
        return "missing"
    same = (marker.get("item") == item.name and marker.get("scale") == opts.scale
            and marker.get("spec_hash") == spec_hash(item, opts.scale, opts.smoke_params, _mode(opts)))
    return "complete" if same else "stale"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _guard_scale(item: Item, opts: PrepareOptions) -> None:
    """Never mix synthetic and real data under one directory, and never overwrite real data with synthetic."""
    root = opts.data_root / item.dest
    marker = read_marker(marker_path(opts.data_root, item))
    if marker is not None and marker.get("scale") != opts.scale:
        raise UserError(f"{root} holds {marker.get('scale')}-scale data (marker {marker_path(opts.data_root, item)});"
                        f" use a separate --data-root for the {opts.scale} scale (e.g. data/smoke)")
    if opts.scale == "paper" and (root / SYNTHETIC_SENTINEL).exists():
        raise UserError(f"{root} holds synthetic smoke-scale data; use another --data-root for the paper scale")


# --------------------------------------------------------------------------------------------- paper scale
def _source_key(source: Source) -> str:
    return _sha({k: v for k, v in asdict(source).items() if k not in ("urls", "where", "note")})


def _archive_done(record_path: Path, source: Source, root: Path) -> dict | None:
    """The record of an archive unpacked by an earlier run, if its content spec matches and its output exists."""
    try:
        rec = json.loads(record_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if rec.get("source_key") != _source_key(source):
        return None
    if not all((root / p).exists() for p in rec.get("produced", [])):
        return None
    return rec


def _fetch_and_unpack(item: Item, source: Source, archive_name: str, extract: Extract, lock_source: Source,
                      urls: Sequence[str], opts: PrepareOptions, lock: ChecksumLock) -> dict:
    root = opts.data_root / item.dest
    downloads = opts.data_root / "downloads" / item.name
    record_path = downloads / f"{archive_name}.done.json"
    if not opts.force:
        rec = _archive_done(record_path, source, root)
        if rec is not None:
            _log(f"{item.name}: {archive_name} already unpacked ({record_path}); skipped")
            return rec
    archive = downloads / archive_name
    digests = fetch(lock_source, archive, lock, urls, opts.fetch)
    _log(f"{item.name}: {archive_name} verified (SHA-256 {digests.sha256}); unpacking into {root}")
    produced = extract_archive(archive, root, extract, progress=opts.fetch.progress)
    rec = {"sha256": digests.sha256, "size": digests.size, "source_key": _source_key(source),
           "produced": sorted(str(p.relative_to(root)) for p in produced)}
    atomic_write_json(record_path, rec)
    if not opts.keep_archives:
        archive.unlink()
    return rec


def _prepare_source(item: Item, source: Source, opts: PrepareOptions, lock: ChecksumLock) -> dict:
    """Download one source (automatic, or manual with a mirror given by --url-override)."""
    urls = list(opts.url_overrides.get(source.name) or source.urls)
    if source.kind == "directory":
        if source.archive is None:
            raise ConfigError(f"--url-override {source.name}: a manual directory without an `archive` in the "
                              f"manifest cannot be downloaded; place it by hand")
        lock_source = Source(name=f"{item.name}/{source.archive.name}", urls=tuple(urls), place=".")
        return _fetch_and_unpack(item, source, source.archive.name, source.archive.extract, lock_source, urls,
                                 opts, lock)
    if source.extract is not None:
        return _fetch_and_unpack(item, source, source.name, source.extract, source, urls, opts, lock)
    target = opts.data_root / item.dest / source.place
    digests = fetch(source, target, lock, urls, opts.fetch)
    return {"sha256": digests.sha256, "size": digests.size, "produced": [source.place]}


def _prepare_in_place(item: Item, opts: PrepareOptions) -> dict[str, Any]:
    """A user's own copy: validate the layout (every referenced file present) and report the counts."""
    root = opts.data_root / item.dest
    if not root.is_dir():
        raise UserError(f"{root}: {item.name} is not there; put the dataset in the standard layout "
                        f"(docs/DATA.md) under the scale's data_root, or let the pipeline download it "
                        f"(scales.<s>.download: true)")
    counts = validate_item(root, item.validate, expected=_expected(item, opts))
    _log(f"{item.name}: validated in place: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    return {"sources": {}, "counts": counts, "in_place": True}


def _expected(item: Item, opts: PrepareOptions) -> dict[str, int] | None:
    """The counts to demand: the manifest's (full datasets) or none at all (a subset is fine)."""
    return None if opts.exact_counts else {}


def _prepare_paper(item: Item, opts: PrepareOptions, lock: ChecksumLock) -> dict[str, Any]:
    if opts.in_place:
        return _prepare_in_place(item, opts)
    automatic = [s for s in item.sources if not s.manual or s.name in opts.url_overrides]
    manual = [s for s in item.sources if s.manual and s.name not in opts.url_overrides]
    absent = [s for s in manual if not manual_target(opts.data_root, item, s).exists()
              and not ((p := manual_archive_path(opts.data_root, item, s)) and p.exists())]
    if absent and automatic:
        _log(f"{item.name}: note: {', '.join(s.name for s in absent)} must be placed by hand (instructions at the "
             f"end); downloading the rest first")
    records = {s.name: _prepare_source(item, s, opts, lock) for s in automatic}
    missing = []
    for source in manual:
        rec = check_manual(opts.data_root, item, source, lock, progress=opts.fetch.progress)
        if rec is None:
            missing.append(source)
        else:
            records[source.name] = rec
    if missing:
        raise ManualItemMissing(
            f"item {item.name!r} needs {len(missing)} file(s) that cannot be downloaded automatically:\n"
            + "\n".join(instructions(opts.data_root, item, s, lock) for s in missing)
            + f"\nThen run again: python -m stages.download {item.name} --data-root {opts.data_root}"
            + "\n(A mirror of a manual file can be given with --url-override NAME=URL.)")
    counts = validate_item(opts.data_root / item.dest, item.validate, expected=_expected(item, opts))
    return {"sources": records, "counts": counts}


# --------------------------------------------------------------------------------------------- smoke scale
def _generator(name: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(SYNTHETIC_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != SYNTHETIC_MODULE:
            raise
        raise UserError(f"the smoke scale needs {SYNTHETIC_MODULE}.{name}, but {SYNTHETIC_MODULE} does not "
                        f"exist yet") from None
    fn = getattr(module, name, None)
    if fn is None:
        raise UserError(f"the smoke scale needs {SYNTHETIC_MODULE}.{name}(root, seed=..., num_train=..., "
                        f"num_val=...), which does not exist; this item has no synthetic stand-in yet")
    return fn


def _tree_digest(root: Path) -> tuple[str, dict[str, str]]:
    """SHA-256 over every file of a generated tree (paths and contents) plus each non-image file's SHA-256."""
    tree = hashlib.sha256()
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.name == SYNTHETIC_SENTINEL or path.name.endswith(".complete.json"):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        tree.update(f"{rel}\0{digest}\n".encode())
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            files[rel] = digest
    return tree.hexdigest(), files


def _prepare_smoke(item: Item, opts: PrepareOptions) -> dict[str, Any]:
    root = opts.data_root / item.dest
    if item.smoke is None:
        raise UserError(f"item {item.name!r} has no smoke-scale form (smoke runs do not use it); "
                        f"run it with --scale paper")
    generate = _generator(item.smoke["generator"])
    if root.exists() and any(root.iterdir()) and not (root / SYNTHETIC_SENTINEL).exists():
        raise UserError(f"{root} exists and does not hold synthetic data; refusing to replace it "
                        f"(use an empty --data-root such as data/smoke)")
    staging = root.parent / f".{root.name}.smoke-tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    params = dict(opts.smoke_params)
    _log(f"{item.name}: generating the synthetic stand-in with {item.smoke['generator']}({params})")
    try:
        summary = generate(staging, **params)
        (staging / SYNTHETIC_SENTINEL).write_text(f"generated by {SYNTHETIC_MODULE}.{item.smoke['generator']}\n")
        counts = validate_item(staging, item.validate, expected=_smoke_expected(item, params, generate))
        tree, files = _tree_digest(staging)
        old = root.parent / f".{root.name}.smoke-old"
        if root.exists():
            if old.exists():
                shutil.rmtree(old)
            root.rename(old)
        staging.rename(root)
        if old.exists():
            shutil.rmtree(old)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return {"generator": f"{SYNTHETIC_MODULE}.{item.smoke['generator']}", "params": params, "counts": counts,
            "tree_sha256": tree, "files": files, "generator_summary": _summary(summary, root)}


def _smoke_expected(item: Item, params: Mapping[str, Any],
                    generate: Callable[..., Any] | None = None) -> dict[str, int]:
    """Counts a synthetic tree must have: the manifest's are the real dataset's, so only the generator's
    ``num_<split>`` parameters (images per split) are checked; everything else is recorded.

    Class-folder items (validate kind ``imagenet``, whose options name the ``train`` / ``val`` folders)
    also check ``classes`` against the generator's ``num_classes`` (passed, or its default)."""
    splits = [split for v in item.validate for split in v.options.get("splits", {})]
    folders = [v for v in item.validate if v.kind == "imagenet"]
    splits += [split for v in folders for split in ("train", "val") if split in v.options]
    expected = {f"{split}_images": int(params[f"num_{split}"]) for split in splits if f"num_{split}" in params}
    if folders:
        classes = params.get("num_classes")
        if classes is None and generate is not None:
            default = inspect.signature(generate).parameters.get("num_classes")
            classes = None if default is None or default.default is inspect.Parameter.empty else default.default
        if classes is not None:
            expected["classes"] = int(classes)
    return expected


def _summary(summary: Any, root: Path) -> Any:
    """The generator's return value for the marker, with the staging path replaced by the final one."""
    try:
        summary = json.loads(json.dumps(summary, default=str))
    except (TypeError, ValueError):
        return None
    if isinstance(summary, dict) and "root" in summary:
        summary["root"] = str(root)
    return summary


# --------------------------------------------------------------------------------------------- entry point
def prepare_item(item: Item, opts: PrepareOptions) -> PrepareResult:
    """Make ``item`` complete under ``opts.data_root`` (or skip it when its marker matches) and mark it."""
    if opts.scale not in SCALES:
        raise UserError(f"--scale {opts.scale!r}: expected one of {', '.join(SCALES)}")
    marker = marker_path(opts.data_root, item)
    if not opts.force and item_status(item, opts) == "complete":
        _log(f"{item.name}: already complete ({marker}); skipped")
        return PrepareResult(item.name, "skipped", marker)
    _guard_scale(item, opts)
    lock = ChecksumLock(opts.data_root / "checksums.lock")
    if opts.scale == "paper":
        body = _prepare_paper(item, opts, lock)
    else:
        body = _prepare_smoke(item, opts)
    record = {"schema": MARKER_SCHEMA, "item": item.name, "scale": opts.scale, "synthetic": opts.scale == "smoke",
              "spec_hash": spec_hash(item, opts.scale, opts.smoke_params, _mode(opts)), "dest": item.dest,
              "description": item.description, "licence": item.licence, **body, "created": _now()}
    atomic_write_json(marker, record)  # last: its presence means everything above succeeded
    _log(f"{item.name}: complete ({marker})")
    return PrepareResult(item.name, "prepared", marker)
