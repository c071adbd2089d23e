"""Atomic file writes: outputs appear complete under their final name or not at all.

Every writer here turns a refused write (full disk, quota, read-only file system, permission) into an
`OutputError` whose message starts with the FINAL path and names the cause, e.g.
`results/smoke/x/model.pth: cannot write: no space left on device`, and leaves no temporary file
behind. (Left alone, `torch.save` reports a full disk as `[enforce fail at inline_container.cc:...]`
and a read-only directory shows up as a failure on an unfamiliar `.model.pth.XXXX.tmp` name.)
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from vitpose.utils.errors import OutputError

# errnos that always concern the file being written, whichever call inside a writer raised them
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def describe_os_error(exc: OSError) -> str:
    """The cause in words: OSError(ENOSPC, ...) → 'no space left on device'."""
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


def output_error(path: str | os.PathLike, exc: OSError, action: str = "cannot write") -> OutputError:
    """`<path>: cannot write: <cause>` — for `raise output_error(path, exc) from exc`."""
    return OutputError(f"{os.fspath(path)}: {action}: {describe_os_error(exc)}")


def ensure_dir(path: str | os.PathLike) -> Path:
    """`mkdir -p path`; OutputError naming the directory when it cannot be created."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc, "cannot create the directory") from exc
    return path


def _is_about(exc: OSError, tmp: Path) -> bool:
    """Whether an OSError raised inside a writer concerns the output (not, say, a missing input)."""
    return exc.errno in _OUTPUT_ERRNOS or exc.filename in (str(tmp), tmp)


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic.
    On error the temporary file is removed and ``path`` is left untouched; an OSError about the
    output (see module docstring) becomes an OutputError naming ``path``.
    fsync: flush the data to disk before the rename (and the rename after it), so that a machine
    crash — not only a killed process — leaves the old file or the new one, never an empty one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: cannot create the directory {path.parent} "
                          f"({describe_os_error(exc)})") from exc
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # read-only or full directory: report the file the user asked for
        raise output_error(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if _is_about(exc, tmp_path):
                raise output_error(path, exc) from exc
            raise
        try:
            if fsync:
                _fsync_path(tmp_path)
            # mkstemp creates the file private (0600); give it the mode a plain open() would have.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            os.replace(tmp_path, path)
        except OSError as exc:
            raise output_error(path, exc) from exc
        if fsync:
            with contextlib.suppress(OSError):  # not every file system can sync a directory
                _fsync_path(path.parent, directory=True)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` (e.g. ``lambda p: torch.save(obj, p)``) and rename atomically.

    For torch objects prefer `atomic_torch_save`: torch writing to a path itself cannot tell why a
    write failed, so a full disk here only gets torch's own message (still under the final path).
    """
    with atomic_path(path) as tmp:
        try:
            writer(tmp)
        except RuntimeError as exc:
            if "inline_container" not in str(exc) and "PytorchStreamWriter" not in str(exc):
                raise
            raise OutputError(f"{os.fspath(path)}: cannot write: {str(exc).splitlines()[0]}") from exc


class _FdWriter(io.RawIOBase):
    """A binary file written with `os.write` that keeps the first OSError it hit.

    torch.save into a file object reports a failed `write` as a RuntimeError of its zip writer; the
    kept OSError carries the real cause (errno). `write` always writes the whole buffer: torch
    ignores short writes (and Linux writes at most ~2 GiB per call).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.name = str(path)  # as on a file from open()
        self.error: OSError | None = None
        self._fd = os.open(path, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))

    def _keep(self, exc: OSError) -> OSError:
        if exc.filename is None:
            exc.filename = str(self.path)
        if self.error is None:
            self.error = exc
        return exc

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            raise self._keep(exc) from None
        return done

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    """`torch.save(obj)` to ``path`` atomically and durably (fsync), with OutputError naming ``path``
    and the cause ("no space left on device") when the write fails; no temporary file is left."""
    import torch  # lazy: the light users of this module do not need torch

    with atomic_path(path, fsync=True) as tmp:
        with _FdWriter(tmp) as f:
            try:
                torch.save(obj, f)
            except RuntimeError as exc:
                if f.error is None:
                    raise
                raise f.error from exc  # atomic_path turns it into an OutputError naming `path`


def append_line(path: str | os.PathLike, line: str, *, fsync: bool = True) -> None:
    """Append one line (a newline is added) as a single write, then flush it to disk.

    A write refused half-way (disk full) is cut back to the previous end of the file, so the file
    only ever holds whole lines — short of a kill inside the one `write` call, which readers of
    append-only logs must tolerate as a torn last line. OSError → OutputError naming ``path``.
    """
    data = (line.rstrip("\n") + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        end = os.fstat(fd).st_size
        try:
            done = 0
            while done < len(data):
                done += os.write(fd, data[done:])
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise output_error(path, exc) from exc
    finally:
        os.close(fd)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files `atomic_path` left beside ``path`` when its process was killed
    mid-write (`.<name>.XXXX.tmp`); returns them. Call only where no other writer of ``path`` runs."""
    path = Path(path)
    removed = []
    if path.parent.is_dir():
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed
