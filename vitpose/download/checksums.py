"""Digests, their verification, and the local lock file for checksums that no one publishes.

A source with a published SHA-256 is checked against the manifest. A source without one is checked against
``<data-root>/checksums.lock``, where the first verified copy's SHA-256 is recorded; later copies (a re-download,
another mirror, a file placed by hand) must match it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from vitpose.download.manifest import Source
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_write_json

LOCK_SCHEMA = "vitpose-checksums/1"
CHUNK = 1 << 20


class ChecksumMismatch(DataError):
    """A file's size or digest differs from the published or recorded one."""


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    md5: str


class Hasher:
    """Running SHA-256 and MD5 of a byte stream (MD5 only because MAE publishes md5 prefixes)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha.update(data)
        self._md5.update(data)
        self.size += len(data)

    def digests(self) -> Digests:
        return Digests(size=self.size, sha256=self._sha.hexdigest(), md5=self._md5.hexdigest())


def hash_file(path: str | os.PathLike, hasher: Hasher | None = None, limit: int | None = None,
              progress: bool = False) -> Hasher:
    """Feed the first ``limit`` bytes of ``path`` (all of it by default) into ``hasher`` and return it."""
    hasher = hasher or Hasher()
    path = Path(path)
    total = path.stat().st_size if limit is None else limit
    with open(path, "rb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"hash {path.name}", disable=not progress, leave=False) as bar:
        remaining = total
        while remaining > 0:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            bar.update(len(chunk))
            remaining -= len(chunk)
    return hasher


class ChecksumLock:
    """``checksums.lock``: SHA-256 and size recorded on first verified download, keyed by source name.

    Writers take an exclusive ``flock`` on a sidecar file so concurrent DAG jobs finishing different items do
    not lose each other's records; the file itself is replaced atomically.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"schema": LOCK_SCHEMA, "files": {}}
        except json.JSONDecodeError as exc:
            raise DataError(f"checksum lock {self.path} is not valid JSON ({exc}); fix or delete it") from None
        if data.get("schema") != LOCK_SCHEMA or not isinstance(data.get("files"), dict):
            raise DataError(f"checksum lock {self.path}: expected schema {LOCK_SCHEMA!r} with a `files` mapping")
        return data

    def get(self, name: str) -> dict[str, Any] | None:
        return self._read()["files"].get(name)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".flock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def record(self, name: str, digests: Digests, origin: str) -> None:
        """Record ``name``'s digests unless already recorded (an existing record is never overwritten)."""
        with self._exclusive():
            data = self._read()
            if name in data["files"]:
                return
            data["files"][name] = {
                "sha256": digests.sha256, "size": digests.size, "origin": origin,
                "recorded": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            data["files"] = dict(sorted(data["files"].items()))
            atomic_write_json(self.path, data)


def expected_sha256(source: Source, lock: ChecksumLock) -> tuple[str | None, str]:
    """The SHA-256 a copy of ``source`` must have, and where that value comes from."""
    if source.sha256:
        return source.sha256, "the manifest"
    rec = lock.get(source.name)
    if rec:
        return rec["sha256"], f"{lock.path} (recorded {rec.get('recorded', '?')})"
    return None, "nowhere yet (recorded on first download)"


def verify(source: Source, digests: Digests, lock: ChecksumLock, what: str) -> None:
    """Raise ChecksumMismatch if ``digests`` (of ``what``, a path or URL) disagree with what is known."""
    problems = []
    if source.size is not None and digests.size != source.size:
        problems.append(f"size {digests.size} B, expected {source.size} B (manifest)")
    sha, origin = expected_sha256(source, lock)
    if sha is not None and digests.sha256 != sha:
        problems.append(f"SHA-256 {digests.sha256}, expected {sha} (from {origin})")
    if source.md5_prefix and not digests.md5.startswith(source.md5_prefix):
        problems.append(f"MD5 {digests.md5}, expected prefix {source.md5_prefix} (manifest)")
    if problems:
        raise ChecksumMismatch(f"{what} ({source.name}) failed verification: " + "; ".join(problems))


def record_if_new(source: Source, digests: Digests, lock: ChecksumLock, origin: str) -> None:
    """After a successful verification: remember the SHA-256 of sources that have no published one."""
    if source.sha256 is None:
        lock.record(source.name, digests, origin)
