"""Resumable, verified HTTP(S) downloads with the standard library.

A file is fetched into ``<dest>.part`` (resumed with an HTTP ``Range`` request after a dropped connection),
verified (size, SHA-256, MD5 prefix) and only then renamed onto ``<dest>``. A file that fails verification is
renamed to ``<dest>.corrupt`` and never used. TLS certificates are always verified (urllib's default context).
"""
from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from vitpose.download.checksums import (CHUNK, ChecksumLock, ChecksumMismatch, Digests, Hasher, hash_file,
                                        record_if_new, verify)
from vitpose.download.manifest import Source
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_write_json

USER_AGENT = "vitpose-repro-download/1 (+python-urllib)"
_ENV_HINT = "VITPOSE_URL_OVERRIDE"  # see vitpose.download.overrides
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The default context: certificates and host names verified (loading the CA store takes ~50 ms)."""
    return ssl.create_default_context()


class DownloadError(DataError):
    """Every URL of a source failed; the message lists each URL with its last error."""


class _Transient(Exception):
    """Worth retrying the same URL (dropped connection, timeout, 5xx)."""


class _Permanent(Exception):
    """Give up on this URL and try the next one (404, TLS failure, wrong size announced)."""


@dataclass
class FetchOptions:
    retries: int = 5          # extra attempts per URL after a transient failure
    backoff: float = 2.0      # seconds before the first retry; doubles each time, capped at 60 s
    timeout: float = 60.0     # socket timeout per read
    progress: bool = True


def _log(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def quarantine(path: Path) -> Path:
    """Rename a file that failed verification to ``<name>.corrupt`` (replacing an older one) and return it."""
    target = path.with_name(path.name.removesuffix(".part") + ".corrupt")
    os.replace(path, target)
    return target


def verify_existing(source: Source, path: Path, lock: ChecksumLock, progress: bool = True) -> Digests:
    """Hash a file already on disk and verify it; quarantine it on mismatch (no network involved)."""
    digests = hash_file(path, progress=progress).digests()
    try:
        verify(source, digests, lock, str(path))
    except ChecksumMismatch as exc:
        moved = quarantine(path)
        raise ChecksumMismatch(f"{exc}. It was kept aside as {moved} and not used.") from None
    record_if_new(source, digests, lock, origin=f"file {path}")
    return digests


class _PartFile:
    """``<dest>.part`` plus ``<dest>.part.json`` (the URL and validators the part was fetched from)."""

    def __init__(self, dest: Path) -> None:
        self.path = dest.with_name(dest.name + ".part")
        self.meta_path = dest.with_name(dest.name + ".part.json")

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def meta(self) -> dict:
        try:
            return json.loads(self.meta_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write_meta(self, url: str, headers: http.client.HTTPMessage) -> None:
        atomic_write_json(self.meta_path, {"url": url, "etag": headers.get("ETag"),
                                           "last_modified": headers.get("Last-Modified")})

    def truncate(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb"):
            pass
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()

    def drop_meta(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()


def _resume_headers(part: _PartFile, url: str, source: Source) -> dict[str, str] | None:
    """Headers to resume ``part`` from ``url``, or None when the part must be restarted from zero.

    Bytes from another URL are only trusted when the final digest is pinned: with a digest that is merely
    about to be recorded, a file stitched from two mirrors could be recorded as the truth.
    """
    meta = part.meta()
    headers = {"Range": f"bytes={part.size()}-"}
    if meta.get("url") == url:
        etag = meta.get("etag")
        validator = etag if etag and not etag.startswith("W/") else meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator  # the server sends the whole file (200) if it changed
        return headers
    return headers if source.sha256 else None


def _expected_total(source: Source, resp: http.client.HTTPResponse, offset: int) -> int | None:
    """Total size announced by the server, checked against the manifest before any byte is kept."""
    total: int | None = None
    if resp.status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != offset:
            raise _Transient(f"unexpected Content-Range {resp.headers.get('Content-Range')!r} for offset {offset}")
        total = int(m.group(3)) if m.group(3) != "*" else None
    elif resp.headers.get("Content-Length") is not None:
        total = int(resp.headers["Content-Length"])
    if total is not None and source.size is not None and total != source.size:
        raise _Permanent(f"server announces {total} B but the manifest expects {source.size} B "
                         f"(has the file at this URL changed?)")
    return source.size if source.size is not None else total


@dataclass
class _State:
    """The running digest of the part file; replaced whenever the part restarts from zero."""

    hasher: Hasher


def _attempt(source: Source, url: str, part: _PartFile, state: _State, opts: FetchOptions) -> None:
    """One HTTP request; appends to the part file and keeps ``state.hasher`` equal to its digest."""
    headers = {"User-Agent": USER_AGENT}
    offset = part.size()
    if offset > 0:
        resume = _resume_headers(part, url, source)
        if resume is None:
            _log(f"{source.name}: partial file came from another URL and no SHA-256 is pinned; restarting from zero")
            part.truncate()
            offset, state.hasher = 0, Hasher()
        else:
            headers.update(resume)
    if state.hasher.size != offset:  # the part on disk is not what this process has hashed (earlier run)
        state.hasher = hash_file(part.path, progress=opts.progress)
    hasher = state.hasher
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=opts.timeout, context=_tls_context())
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset > 0:
            # Range not satisfiable: the part may already be complete (verified next) or be longer than the file.
            total = source.size
            m = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if m:
                total = int(m.group(1))
            if total is not None and total == offset:
                return
            part.truncate()
            state.hasher = Hasher()
            raise _Transient(f"HTTP 416 for a {offset} B partial file; restarted from zero") from None
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise _Permanent(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            raise _Permanent(f"TLS certificate verification failed ({exc.reason.verify_message}); "
                             f"verification is never disabled, use another mirror") from None
        raise _Transient(f"cannot connect: {exc.reason}") from None
    except (http.client.HTTPException, OSError) as exc:  # e.g. a garbled status line
        raise _Transient(f"bad response: {exc!r}") from None
    with resp:
        if resp.status == 200 and offset > 0:
            _log(f"{source.name}: server ignored the Range request (or the file changed); restarting from zero")
            part.truncate()
            offset, hasher = 0, Hasher()
            state.hasher = hasher
        elif resp.status not in (200, 206):
            raise _Transient(f"unexpected HTTP status {resp.status}")
        total = _expected_total(source, resp, offset)
        if offset == 0:
            part.write_meta(url, resp.headers)
        mode = "ab" if offset > 0 else "wb"
        with open(part.path, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=source.name,
            disable=not opts.progress, mininterval=1.0, file=sys.stderr,
        ) as bar:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (http.client.HTTPException, OSError) as exc:  # IncompleteRead, reset, timeout
                    raise _Transient(f"connection lost after {hasher.size} B: {exc!r}") from None
                if not chunk:
                    break
                out.write(chunk)  # a local write error (disk full) is not retried: it propagates
                hasher.update(chunk)
                bar.update(len(chunk))
                if total is not None and hasher.size > total:
                    break  # more bytes than announced: verification below rejects the file
    if total is not None and hasher.size < total:
        raise _Transient(f"connection closed after {hasher.size} of {total} B")


def fetch(source: Source, dest: str | os.PathLike, lock: ChecksumLock, urls: Sequence[str] | None = None,
          options: FetchOptions | None = None) -> Digests:
    """Download ``source`` to ``dest`` and verify it; return its digests.

    An existing ``dest`` is verified without network access. ``urls`` (default ``source.urls``) are tried in
    order; transient failures are retried with exponential back-off, resuming from the bytes already received.
    Raises ChecksumMismatch (file kept aside as ``<dest>.corrupt``) or DownloadError.
    """
    opts = options or FetchOptions()
    dest = Path(dest)
    if dest.exists():
        return verify_existing(source, dest, lock, progress=opts.progress)
    urls = list(urls if urls is not None else source.urls)
    if not urls:
        raise DownloadError(f"{source.name}: no URL to download from")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _PartFile(dest)
    state = _State(Hasher())
    failures: list[str] = []
    for url in urls:
        done, error = False, ""
        for attempt in range(opts.retries + 1):
            if attempt:
                time.sleep(min(opts.backoff * 2 ** (attempt - 1), 60.0))
            try:
                _attempt(source, url, part, state, opts)
                done = True
                break
            except _Transient as exc:
                error = str(exc)
                _log(f"{source.name}: {url}: {error} (attempt {attempt + 1}/{opts.retries + 1})")
            except _Permanent as exc:
                error = str(exc)
                _log(f"{source.name}: {url}: {error}; trying the next URL")
                break
        if done:
            return _finish(source, dest, part, state.hasher.digests(), lock, url)
        failures.append(f"{url}: {error}")
    lines = [f"could not download {source.name}:", *(f"  {f}" for f in failures)]
    if part.size():
        lines.append(f"The partial file {part.path} ({part.size()} B) is kept; run again to resume.")
    lines.append(f"A mirror can be given with --url-override {source.name}=URL (or ${_ENV_HINT}).")
    raise DownloadError("\n".join(lines))


def _finish(source: Source, dest: Path, part: _PartFile, digests: Digests, lock: ChecksumLock,
            url: str) -> Digests:
    try:
        verify(source, digests, lock, url)
    except ChecksumMismatch as exc:
        part.drop_meta()
        moved = quarantine(part.path)
        raise ChecksumMismatch(f"{exc}. The download was kept aside as {moved} and not used.") from None
    os.replace(part.path, dest)
    part.drop_meta()
    record_if_new(source, digests, lock, origin=url)
    return digests
