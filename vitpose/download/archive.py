"""Safe archive extraction: test the whole archive, refuse unsafe members, then unpack.

Before a single byte is written, every member is checked: absolute paths, ``..`` components, symbolic and hard
links and special files make the whole archive refused. The archive's integrity is tested by reading every member
(zip: each member's CRC-32, as ``ZipFile.testzip`` checks it; tar: a full read, which also checks gzip/xz
trailers). Trees are unpacked into a staging directory beside the destination and moved into place when complete.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from vitpose.download.checksums import CHUNK
from vitpose.download.manifest import Extract
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_path

_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)
try:  # xz support is optional in CPython builds
    import lzma
    _READ_ERRORS = _READ_ERRORS + (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass


class UnsafeArchiveError(DataError):
    """An archive member would escape the destination or is a link / special file."""


class CorruptArchiveError(DataError):
    """An archive cannot be read completely (truncated, bad CRC, not an archive)."""


def _is_zip(path: Path) -> bool:
    """Zip by its leading signature (``zipfile.is_zipfile`` also accepts e.g. a tar that ends in a zip)."""
    with open(path, "rb") as fh:
        return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name is unsafe to extract (None when it is safe)."""
    norm = name.replace("\\", "/")
    if not norm.strip("/"):
        return "empty name"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "absolute path"
    if ".." in norm.split("/"):
        return "'..' component"
    return None


def _refuse(path: Path, problems: list[str]) -> None:
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise UnsafeArchiveError(f"archive {path} refused, nothing was extracted: {shown}")


def _bar(path: Path, what: str, total: int | None, progress: bool, unit: str = "B") -> tqdm:
    return tqdm(total=total, desc=f"{what} {path.name}", unit=unit, unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000, disable=not progress, mininterval=1.0, leave=False)


def _inspect_zip(path: Path, progress: bool) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        problems, files = [], []
        for info in zf.infolist():
            reason = unsafe_name_reason(info.filename)
            ftype = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer stored no Unix file type
            if reason is None and ftype == stat.S_IFLNK:
                reason = "symbolic link"
            elif reason is None and ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
                reason = "special file"
            if reason:
                problems.append(f"member {info.filename!r}: {reason}")
            elif not info.is_dir():
                files.append(info.filename)
        _refuse(path, problems)
        # The check ZipFile.testzip() makes (read every member, compare its CRC-32), with a progress bar.
        with _bar(path, "test", sum(i.file_size for i in zf.infolist()), progress) as bar:
            for info in zf.infolist():
                try:
                    with zf.open(info) as fh:
                        while chunk := fh.read(CHUNK):
                            bar.update(len(chunk))
                except zipfile.BadZipFile as exc:
                    raise CorruptArchiveError(f"archive {path}: member {info.filename!r} fails its CRC check "
                                              f"({exc})") from None
        return files


def _inspect_tar(path: Path, progress: bool) -> list[str]:
    with tarfile.open(path, "r:*") as tf, _bar(path, "test", None, progress) as bar:
        problems, files = [], []
        for member in tf:
            reason = unsafe_name_reason(member.name)
            if reason is None:
                if member.issym():
                    reason = f"symbolic link to {member.linkname!r}"
                elif member.islnk():
                    reason = f"hard link to {member.linkname!r}"
                elif not (member.isfile() or member.isdir()):
                    reason = "special file (device, fifo)"
            if reason:
                problems.append(f"member {member.name!r}: {reason}")
                continue
            if member.isfile():
                files.append(member.name)
                fh = tf.extractfile(member)
                while chunk := fh.read(CHUNK):  # a full read: truncation and compression errors surface here
                    bar.update(len(chunk))
        _refuse(path, problems)
        return files


def inspect_archive(path: str | os.PathLike, progress: bool = False) -> list[str]:
    """Check that every member of a zip or tar archive is safe and readable; return the file members.

    Raises UnsafeArchiveError or CorruptArchiveError; writes nothing.
    """
    path = Path(path)
    try:
        if _is_zip(path):
            return _inspect_zip(path, progress)
        if tarfile.is_tarfile(path):
            return _inspect_tar(path, progress)
    except (UnsafeArchiveError, CorruptArchiveError):
        raise
    except _READ_ERRORS as exc:
        raise CorruptArchiveError(f"archive {path} cannot be read completely: {exc!r}") from None
    raise CorruptArchiveError(f"{path} is neither a zip nor a tar archive")


def _pick_members(path: Path, members: list[str], extract: Extract) -> dict[str, str]:
    """Map each wanted base name to the one archive member that carries it."""
    chosen = {}
    for base in extract.files:
        hits = [m for m in members if PurePosixPath(m.replace("\\", "/")).name == base]
        if len(hits) != 1:
            listing = ", ".join(members[:10]) + (" ..." if len(members) > 10 else "")
            what = "no member" if not hits else f"{len(hits)} members ({', '.join(hits)})"
            raise DataError(f"archive {path}: expected exactly one member named {base!r}, found {what}; "
                            f"members: {listing}")
        chosen[base] = hits[0]
    return chosen


def _copy_member(path: Path, member: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        if _is_zip(path):
            with zipfile.ZipFile(path) as zf, zf.open(member) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        else:
            with tarfile.open(path, "r:*") as tf:
                src = tf.extractfile(member)
                with open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def extract_archive(path: str | os.PathLike, dest: str | os.PathLike, extract: Extract,
                    progress: bool = False) -> list[Path]:
    """Inspect ``path`` and unpack it into ``dest`` as ``extract`` says; return the paths it produced.

    ``tree``: the archive's top-level entries appear under ``dest/extract.into`` (replacing same-named
    entries) only after the whole tree was unpacked in a staging directory. ``pick``: each named member is
    copied atomically to ``dest/<path>``.
    """
    path, dest = Path(path), Path(dest)
    members = inspect_archive(path, progress)
    if extract.mode == "pick":
        produced = []
        for base, member in _pick_members(path, members, extract).items():
            target = dest / extract.files[base]
            _copy_member(path, member, target)
            produced.append(target)
        return produced
    into = dest / extract.into
    into.mkdir(parents=True, exist_ok=True)
    staging = into / f".extract-{path.name}.tmp"
    if staging.exists():
        shutil.rmtree(staging)  # left over from an interrupted run
    staging.mkdir()
    try:
        with _bar(path, "unpack", len(members), progress, unit="file") as bar:
            if _is_zip(path):
                with zipfile.ZipFile(path) as zf:
                    for info in zf.infolist():
                        zf.extract(info, staging)
                        bar.update(not info.is_dir())
            else:
                with tarfile.open(path, "r:*") as tf:
                    def counted(tar: tarfile.TarFile):
                        for member in tar:
                            yield member
                            bar.update(member.isfile())
                    # filter="data" is a second line of defence after inspect_archive
                    tf.extractall(staging, members=counted(tf), filter="data")
        produced = []
        for entry in sorted(staging.iterdir()):
            target = into / entry.name
            if target.exists() or target.is_symlink():
                _remove(target)
            os.replace(entry, target)
            produced.append(target)
        return produced
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
