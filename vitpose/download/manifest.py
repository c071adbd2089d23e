"""The download manifest: every dataset and weight file the paper-scale DAG starts from.

`manifest.yaml` (beside this module) is the single place where URLs, sizes, checksums, licences and manual steps
are written down; this module parses it into frozen dataclasses and rejects anything malformed with a message that
names the file and key.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from vitpose.utils.errors import ConfigError, UserError

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.yaml")
SCHEMA = "vitpose-download-manifest/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")

_ITEM_KEYS = {"description", "dest", "licence", "approx_size", "sources", "validate", "smoke"}
_SOURCE_KEYS = {"name", "urls", "size", "sha256", "md5_prefix", "manual", "kind", "place", "extract",
                "archive", "where", "note"}
_EXTRACT_KEYS = {"mode", "into", "files"}


@dataclass(frozen=True)
class Extract:
    """How an archive is unpacked: ``tree`` = whole tree into ``dest/into``; ``pick`` = named members only.

    ``files`` (pick mode) maps a member's base name to its path relative to the item's ``dest``.
    """

    mode: str
    into: str = "."
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ManualArchive:
    """A manual directory that the user may instead place as this archive in ``downloads/<item>/``."""

    name: str
    extract: Extract


@dataclass(frozen=True)
class Source:
    """One file (or, for manual sources, one directory) an item is built from."""

    name: str
    urls: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    md5_prefix: str | None = None
    manual: bool = False
    kind: str = "file"
    place: str | None = None
    extract: Extract | None = None
    archive: ManualArchive | None = None
    where: str | None = None
    note: str | None = None

    @property
    def is_archive(self) -> bool:
        return self.extract is not None


@dataclass(frozen=True)
class ValidateSpec:
    kind: str
    expected: Mapping[str, int] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """A unit the DAG depends on: one marker file (``marker``, relative to the data root) under ``dest``."""

    name: str
    description: str
    dest: str
    licence: str
    sources: tuple[Source, ...]
    marker: str
    validate: tuple[ValidateSpec, ...] = ()
    smoke: Mapping[str, str] | None = None
    approx_size: str | None = None

    def spec_hash(self) -> str:
        """SHA-256 of the fields that define the item's content (not URLs, prose or licences).

        A marker written under a different spec hash is stale: the manifest changed what the item must hold.
        """
        content = {
            "dest": self.dest,
            "sources": [
                {k: v for k, v in asdict(s).items() if k not in ("urls", "where", "note")} for s in self.sources
            ],
            "validate": [asdict(v) for v in self.validate],
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    items: Mapping[str, Item]
    groups: Mapping[str, tuple[str, ...]]
    path: Path

    def resolve(self, names: Iterable[str]) -> list[Item]:
        """Items for command-line names (item names or group names), in order, without duplicates."""
        out: list[Item] = []
        for name in names:
            if name in self.groups:
                members = self.groups[name]
            elif name in self.items:
                members = (name,)
            elif name in self._aliases():
                members = (self._aliases()[name],)
            else:
                known = ", ".join(sorted(self.items) + sorted(self.groups))
                raise UserError(f"unknown item {name!r} (manifest {self.path}); expected one of: {known} "
                                f"(or a source file name such as mae_pretrain_vit_base.pth)")
            for member in members:
                if all(it.name != member for it in out):
                    out.append(self.items[member])
        return out

    def _aliases(self) -> dict[str, str]:
        """Source file names and their stems -> item (``mae_pretrain_vit_base`` -> ``mae-vit-b``)."""
        out: dict[str, str] = {}
        for item in self.items.values():
            for src in item.sources:
                out.setdefault(src.name, item.name)
                out.setdefault(src.name.split(".")[0], item.name)
        return out

    def find_source(self, key: str) -> tuple[Item, Source]:
        """The source named ``key``, or the only source of the item named ``key``."""
        for item in self.items.values():
            for src in item.sources:
                if src.name == key:
                    return item, src
        if key in self.items and len(self.items[key].sources) == 1:
            item = self.items[key]
            return item, item.sources[0]
        raise UserError(
            f"--url-override key {key!r} names no source in {self.path}; expected a source name "
            f"(e.g. val2017.zip) or the name of an item with a single source"
        )


def _check_keys(where: str, got: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(got) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _parse_extract(where: str, raw: Any) -> Extract:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}.extract: expected a mapping with `mode`, got {raw!r}")
    _check_keys(f"{where}.extract", raw, _EXTRACT_KEYS)
    mode = raw.get("mode")
    if mode not in ("tree", "pick"):
        raise ConfigError(f"{where}.extract.mode: expected 'tree' or 'pick', got {mode!r}")
    files = dict(raw.get("files") or {})
    if mode == "pick" and not files:
        raise ConfigError(f"{where}.extract.files: pick mode needs a mapping member-name -> destination path")
    return Extract(mode=mode, into=str(raw.get("into", ".")), files=files)


def _parse_source(where: str, raw: Any) -> Source:
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise ConfigError(f"{where}: expected a mapping with at least `name`, got {raw!r}")
    _check_keys(where, raw, _SOURCE_KEYS)
    name = str(raw["name"])
    where = f"{where} ({name})"
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise ConfigError(f"{where}.name: expected a plain file name, got {name!r}")
    urls = raw.get("urls") or []
    if isinstance(urls, str):
        urls = [urls]
    manual = bool(raw.get("manual", False))
    if not manual and not urls:
        raise ConfigError(f"{where}: a source that is not `manual: true` needs at least one URL in `urls`")
    if manual and not raw.get("where"):
        raise ConfigError(f"{where}: a manual source needs `where` (where the user gets it)")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise ConfigError(f"{where}.size: expected a positive integer number of bytes or null, got {size!r}")
    sha = raw.get("sha256")
    if sha is not None and not _HEX64.match(str(sha)):
        raise ConfigError(f"{where}.sha256: expected 64 lowercase hex digits or null, got {sha!r}")
    md5p = raw.get("md5_prefix")
    if md5p is not None and not _HEX.match(str(md5p)):
        raise ConfigError(f"{where}.md5_prefix: expected lowercase hex digits, got {md5p!r}")
    kind = raw.get("kind", "file")
    if kind not in ("file", "directory"):
        raise ConfigError(f"{where}.kind: expected 'file' or 'directory', got {kind!r}")
    if kind == "directory" and not manual:
        raise ConfigError(f"{where}: only manual sources may be directories")
    extract = _parse_extract(where, raw["extract"]) if raw.get("extract") is not None else None
    place = raw.get("place")
    if extract is None and place is None:
        raise ConfigError(f"{where}: needs `place` (where the file lands) or `extract` (how to unpack it)")
    archive = None
    if raw.get("archive") is not None:
        arc = raw["archive"]
        if kind != "directory" or not isinstance(arc, Mapping) or "name" not in arc or "extract" not in arc:
            raise ConfigError(f"{where}.archive: only for manual directories; expected {{name, extract}}")
        archive = ManualArchive(name=str(arc["name"]), extract=_parse_extract(f"{where}.archive", arc["extract"]))
    return Source(
        name=name, urls=tuple(str(u) for u in urls), size=size, sha256=sha, md5_prefix=md5p, manual=manual,
        kind=kind, place=place, extract=extract, archive=archive, where=raw.get("where"), note=raw.get("note"),
    )


def _parse_validate(where: str, v: Any) -> ValidateSpec:
    if not isinstance(v, Mapping) or "kind" not in v:
        raise ConfigError(f"{where}: expected a mapping with `kind`, got {v!r}")
    _check_keys(where, v, {"kind", "expected", "options"})
    expected = dict(v.get("expected") or {})
    for k, n in expected.items():
        if not isinstance(n, int) or n < 0:
            raise ConfigError(f"{where}.expected.{k}: expected a non-negative integer, got {n!r}")
    return ValidateSpec(kind=str(v["kind"]), expected=expected, options=dict(v.get("options") or {}))


def _parse_item(path: Path, name: str, raw: Any, marker: str) -> Item:
    where = f"{path}: items.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    _check_keys(where, raw, _ITEM_KEYS)
    for key in ("description", "dest", "licence", "sources"):
        if not raw.get(key):
            raise ConfigError(f"{where}.{key}: required")
    sources = tuple(_parse_source(f"{where}.sources[{i}]", s) for i, s in enumerate(raw["sources"]))
    raw_validate = raw.get("validate") or []
    if isinstance(raw_validate, Mapping):
        raw_validate = [raw_validate]
    validate = tuple(_parse_validate(f"{where}.validate[{i}]", v) for i, v in enumerate(raw_validate))
    smoke = raw.get("smoke")
    if smoke is not None and not (isinstance(smoke, Mapping) and set(smoke) == {"generator"}):
        raise ConfigError(f"{where}.smoke: expected {{generator: NAME}}, got {smoke!r}")
    return Item(name=name, description=str(raw["description"]), dest=str(raw["dest"]),
                licence=str(raw["licence"]), sources=sources, marker=marker, validate=validate,
                smoke=dict(smoke) if smoke else None, approx_size=raw.get("approx_size"))


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Parse and check a manifest file (default: the project's ``vitpose/download/manifest.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_MANIFEST
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"manifest {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"manifest {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping) or raw.get("schema") != SCHEMA:
        raise ConfigError(f"manifest {path}: expected `schema: {SCHEMA}` at top level")
    _check_keys(str(path), raw, {"schema", "groups", "items"})
    raw_items = raw.get("items") or {}
    dests = [r.get("dest") for r in raw_items.values() if isinstance(r, Mapping)]
    items = {}
    for n, r in raw_items.items():
        dest = r.get("dest") if isinstance(r, Mapping) else None
        # one marker per item: `<dest>/.complete.json`, named after the item where items share a dest (weights)
        marker = f"{dest}/.complete.json" if dests.count(dest) == 1 else f"{dest}/.{n}.complete.json"
        items[str(n)] = _parse_item(path, str(n), r, marker)
    seen: dict[str, str] = {}
    for item in items.values():
        for src in item.sources:
            if src.name in seen:
                raise ConfigError(f"{path}: source name {src.name!r} used by both {seen[src.name]} and {item.name}")
            seen[src.name] = item.name
    groups: dict[str, tuple[str, ...]] = {}
    for g, members in (raw.get("groups") or {}).items():
        if g in items:
            raise ConfigError(f"{path}: group {g!r} has the same name as an item")
        bad = [m for m in members if m not in items]
        if bad:
            raise ConfigError(f"{path}: groups.{g} names unknown item(s) {bad}")
        groups[str(g)] = tuple(members)
    return Manifest(items=items, groups=groups, path=path)
