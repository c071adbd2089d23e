"""Sources that cannot be fetched automatically (logins, drive links): check what the user placed, or explain.

A manual file is verified like a download (published SHA-256, or the one recorded in checksums.lock on first
use). A manual directory must exist and be non-empty (its images are checked by the item's validator), or be
placed as the archive the manifest names, which is then verified and unpacked safely.
"""
from __future__ import annotations

from pathlib import Path

from vitpose.download.archive import extract_archive
from vitpose.download.checksums import ChecksumLock, expected_sha256
from vitpose.download.fetch import verify_existing
from vitpose.download.manifest import Item, Source
from vitpose.utils.errors import DataError


class ManualItemMissing(DataError):
    """One or more manual sources are not in place; the message says where to get and put each."""


def manual_target(data_root: Path, item: Item, source: Source) -> Path:
    """Where the user must put ``source`` (a file, or a directory of images)."""
    return data_root / item.dest / (source.place or source.name)


def manual_archive_path(data_root: Path, item: Item, source: Source) -> Path | None:
    """Where the user may instead put the archive of a manual directory (None when there is none)."""
    return data_root / "downloads" / item.name / source.archive.name if source.archive else None


def instructions(data_root: Path, item: Item, source: Source, lock: ChecksumLock) -> str:
    """Human instructions for one missing manual source: what, where to get it, where to put it, its hash."""
    target = manual_target(data_root, item, source).resolve()
    lines = [f"- {source.name}: {item.description}", f"    get it:  {source.where}"]
    if source.kind == "directory":
        lines.append(f"    put it:  unpack it so that {target}/ holds the image files")
        arc = manual_archive_path(data_root, item, source)
        if arc is not None:
            lines.append(f"             (or save the archive {source.archive.name} as {arc.resolve()}; it is then "
                         f"checked and unpacked for you)")
        check = "    check:   a directory has no single hash; its content is checked by the item's validation"
        if any(v.kind in ("coco_keypoints", "mpii") for v in item.validate):
            check += " (every image the annotations reference must be present)"
        lines.append(check)
        if arc is not None:
            rec = lock.get(f"{item.name}/{source.archive.name}")
            lines.append(f"             the archive's SHA-256 must be {rec['sha256']} (from {lock.path.resolve()})"
                         if rec else
                         f"             the archive's SHA-256 is recorded in {lock.path.resolve()} on first use")
    else:
        lines.append(f"    put it:  {target}")
        sha, origin = expected_sha256(source, lock)
        if sha:
            lines.append(f"    SHA-256: {sha} (from {origin})")
        else:
            lines.append(f"    SHA-256: none is published; the first copy's SHA-256 is recorded in "
                         f"{lock.path.resolve()} and every later copy must match it")
        if source.size:
            lines.append(f"    size:    {source.size:,} bytes")
        if source.md5_prefix:
            lines.append(f"    MD5:     starts with {source.md5_prefix}")
    expected = {k: n for v in item.validate for k, n in v.expected.items()}
    if expected:
        counts = ", ".join(f"{k} = {n:,}" for k, n in expected.items())
        lines.append(f"    item:    {item.name} is validated as a whole: {counts}")
    lines.append(f"    licence: {item.licence}")
    return "\n".join(lines)


def check_manual(data_root: Path, item: Item, source: Source, lock: ChecksumLock,
                 progress: bool = True) -> dict | None:
    """Verify a placed manual source; return a record for the marker, or None when it is missing."""
    target = manual_target(data_root, item, source)
    if source.kind == "file":
        if not target.is_file():
            return None
        digests = verify_existing(source, target, lock, progress=progress)
        return {"path": str(target), "sha256": digests.sha256, "size": digests.size}
    if target.is_dir() and any(target.iterdir()):
        return {"path": str(target), "directory": True}
    arc = manual_archive_path(data_root, item, source)
    if arc is not None and arc.is_file():
        # keyed by item in checksums.lock: archive names such as images.zip are not unique across datasets
        archive_source = Source(name=f"{item.name}/{source.archive.name}", manual=True,
                                place=source.archive.name, where=source.where)
        digests = verify_existing(archive_source, arc, lock, progress=progress)
        extract_archive(arc, data_root / item.dest, source.archive.extract, progress=progress)
        if not (target.is_dir() and any(target.iterdir())):
            raise DataError(f"unpacking {arc} did not produce {target}/; expected the archive to hold "
                            f"{Path(source.place or source.name).name}/")
        return {"path": str(target), "directory": True, "archive": str(arc), "archive_sha256": digests.sha256}
    return None
