"""Resumable verified downloads against a local HTTP server (Range, no Range, dropped connections)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from vitpose.download import ChecksumLock, ChecksumMismatch, DownloadError, FetchOptions, Source, fetch
from vitpose.download.localserver import LocalFileServer

FAST = FetchOptions(retries=2, backoff=0.0, timeout=10.0, progress=False)
DATA = os.urandom(2_500_000)  # spans several 1 MiB read chunks
SHA = hashlib.sha256(DATA).hexdigest()


def source(**kw) -> Source:
    kw.setdefault("name", "blob.bin")
    kw.setdefault("place", kw["name"])
    return Source(**kw)


def test_interrupted_download_resumes_with_range_and_verifies(tmp_path: Path) -> None:
    src = source(size=len(DATA), sha256=SHA)
    with LocalFileServer({"/blob.bin": DATA}, drop_after=1_000_000) as srv:
        digests = fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert digests.sha256 == SHA
    assert (tmp_path / "blob.bin").read_bytes() == DATA
    assert [(r.headers.get("Range"), r.status) for r in srv.requests] == [(None, 200), ("bytes=1000000-", 206)]
    # the resumed request named the validator of the first response, so a changed file would restart
    assert srv.requests[1].headers.get("If-Range") == srv.etag("/blob.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]  # no .part / .part.json left


def test_resume_across_processes_keeps_part_then_completes(tmp_path: Path) -> None:
    """A run that gives up leaves <dest>.part; the next run resumes it with Range instead of starting over."""
    src = source(size=len(DATA), sha256=SHA)
    lock = ChecksumLock(tmp_path / "lock")
    with LocalFileServer({"/blob.bin": DATA}, drop_after=700_000, drops=1) as srv:
        with pytest.raises(DownloadError, match="is kept; run again to resume"):
            fetch(src, tmp_path / "blob.bin", lock, [srv.url("/blob.bin")],
                  FetchOptions(retries=0, backoff=0.0, progress=False))
        assert (tmp_path / "blob.bin.part").stat().st_size == 700_000
        assert not (tmp_path / "blob.bin").exists()
        digests = fetch(src, tmp_path / "blob.bin", lock, [srv.url("/blob.bin")], FAST)
    assert digests.sha256 == SHA and (tmp_path / "blob.bin").read_bytes() == DATA
    assert srv.requests[-1].headers.get("Range") == "bytes=700000-" and srv.requests[-1].status == 206


def test_server_without_range_support_restarts_cleanly_from_zero(tmp_path: Path) -> None:
    src = source(size=len(DATA), sha256=SHA)
    # a stale partial file whose bytes are wrong: if they were kept, the SHA-256 would fail
    (tmp_path / "blob.bin.part").write_bytes(b"\xff" * 900_000)
    with LocalFileServer({"/blob.bin": DATA}, support_range=False) as srv:
        digests = fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert digests.sha256 == SHA and (tmp_path / "blob.bin").read_bytes() == DATA
    assert [(r.headers.get("Range"), r.status) for r in srv.requests] == [("bytes=900000-", 200)]


def test_no_range_server_with_dropped_connection_restarts_each_time(tmp_path: Path) -> None:
    src = source(size=len(DATA), sha256=SHA)
    with LocalFileServer({"/blob.bin": DATA}, support_range=False, drop_after=600_000) as srv:
        fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert (tmp_path / "blob.bin").read_bytes() == DATA
    assert [r.status for r in srv.requests] == [200, 200]


def test_wrong_hash_is_kept_aside_and_not_used(tmp_path: Path) -> None:
    src = source(size=len(DATA), sha256="0" * 64)
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        with pytest.raises(ChecksumMismatch, match=r"SHA-256 .* expected 0{64}.*kept aside as .*blob\.bin\.corrupt"):
            fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert not (tmp_path / "blob.bin").exists()
    assert (tmp_path / "blob.bin.corrupt").read_bytes() == DATA
    assert not (tmp_path / "blob.bin.part").exists()


def test_md5_prefix_is_checked(tmp_path: Path) -> None:
    md5 = hashlib.md5(DATA).hexdigest()
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        fetch(source(md5_prefix=md5[:6]), tmp_path / "ok.bin", ChecksumLock(tmp_path / "lock"),
              [srv.url("/blob.bin")], FAST)
        bad = "0" * 6 if not md5.startswith("000000") else "ffffff"
        with pytest.raises(ChecksumMismatch, match=f"expected prefix {bad}"):
            fetch(source(name="other.bin", md5_prefix=bad), tmp_path / "bad.bin", ChecksumLock(tmp_path / "lock"),
                  [srv.url("/blob.bin")], FAST)
    assert (tmp_path / "ok.bin").exists() and (tmp_path / "bad.bin.corrupt").exists()


def test_unpublished_hash_is_recorded_then_enforced(tmp_path: Path) -> None:
    lock = ChecksumLock(tmp_path / "checksums.lock")
    src = source()  # no size, no sha256: "recorded on first download"
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        fetch(src, tmp_path / "a" / "blob.bin", lock, [srv.url("/blob.bin")], FAST)
        recorded = json.loads((tmp_path / "checksums.lock").read_text())["files"]["blob.bin"]
        assert recorded["sha256"] == SHA and recorded["size"] == len(DATA)
        srv.files["/blob.bin"] = DATA[:-1] + b"\x00"  # the mirror now serves something else
        with pytest.raises(ChecksumMismatch, match="checksums.lock"):
            fetch(src, tmp_path / "b" / "blob.bin", lock, [srv.url("/blob.bin")], FAST)
    assert (tmp_path / "b" / "blob.bin.corrupt").exists() and not (tmp_path / "b" / "blob.bin").exists()
    assert lock.get("blob.bin")["sha256"] == SHA  # a mismatch never overwrites the record


def test_announced_size_mismatch_fails_before_downloading(tmp_path: Path) -> None:
    src = source(size=len(DATA) + 1, sha256=SHA)
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        with pytest.raises(DownloadError, match=f"announces {len(DATA)} B but the manifest expects"):
            fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert not (tmp_path / "blob.bin").exists()
    assert not (tmp_path / "blob.bin.part").exists() or (tmp_path / "blob.bin.part").stat().st_size == 0


def test_falls_back_to_next_mirror_on_404(tmp_path: Path) -> None:
    src = source(size=len(DATA), sha256=SHA)
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"),
              [srv.url("/missing.bin"), srv.url("/blob.bin")], FAST)
    assert [r.status for r in srv.requests] == [404, 200]


def test_complete_part_answered_416_is_verified_not_refetched(tmp_path: Path) -> None:
    src = source(size=len(DATA), sha256=SHA)
    (tmp_path / "blob.bin.part").write_bytes(DATA)  # e.g. killed between the last byte and the rename
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        fetch(src, tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert [r.status for r in srv.requests] == [416]
    assert (tmp_path / "blob.bin").read_bytes() == DATA


def test_unpinned_part_from_another_url_is_not_trusted(tmp_path: Path) -> None:
    """Without a published digest, bytes from one mirror are never stitched to bytes from another."""
    (tmp_path / "blob.bin.part").write_bytes(DATA[:500_000])
    (tmp_path / "blob.bin.part.json").write_text(json.dumps({"url": "http://elsewhere/blob.bin"}))
    with LocalFileServer({"/blob.bin": DATA}) as srv:
        fetch(source(), tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"), [srv.url("/blob.bin")], FAST)
    assert [(r.headers.get("Range"), r.status) for r in srv.requests] == [(None, 200)]


def test_existing_file_is_verified_without_network(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(DATA)
    digests = fetch(source(size=len(DATA), sha256=SHA), tmp_path / "blob.bin", ChecksumLock(tmp_path / "lock"),
                    ["http://127.0.0.1:9/never-contacted"], FAST)
    assert digests.sha256 == SHA
