"""Archives are tested in full and refused (with nothing extracted) when a member is unsafe."""
from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from vitpose.download import CorruptArchiveError, UnsafeArchiveError, extract_archive, inspect_archive
from vitpose.download.archive import unsafe_name_reason
from vitpose.download.manifest import Extract

TREE = Extract(mode="tree")


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("bad", ["../evil", "a/../../evil", "/etc/evil", "C:/evil", "..\\evil"])
def test_zip_with_escaping_member_is_refused_and_nothing_extracted(tmp_path: Path, bad: str) -> None:
    arc = make_zip(tmp_path / "a.zip", {"good/first.txt": b"ok", bad: b"pwned", "good/last.txt": b"ok"})
    dest = tmp_path / "out" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="nothing was extracted"):
        extract_archive(arc, dest, TREE)
    assert listing(tmp_path / "out") == ["dest"]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "evil").exists()


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    arc = make_zip(tmp_path / "a.zip", {"data/x.txt": b"ok"}, symlinks={"data/link": "/etc/passwd"})
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError, match="'data/link': symbolic link"):
        extract_archive(arc, dest, TREE)
    assert not dest.exists() or listing(dest) == []


@pytest.mark.parametrize("member,reason", [
    (("../evil", b"x"), "'..' component"),
    (("/tmp/evil-abs", b"x"), "absolute path"),
    (link("data/sym", "/etc/passwd", tarfile.SYMTYPE), "symbolic link"),
    (link("data/hard", "/etc/passwd", tarfile.LNKTYPE), "hard link"),
    (link("data/inner", "data/x.txt", tarfile.LNKTYPE), "hard link"),  # even one pointing inside
    (link("data/fifo", "", tarfile.FIFOTYPE), "special file"),
])
def test_tar_with_unsafe_member_is_refused_and_nothing_extracted(tmp_path: Path, member, reason: str) -> None:
    arc = make_tar(tmp_path / "a.tar.gz", [("data/x.txt", b"ok"), member, ("data/y.txt", b"ok")])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=reason):
        extract_archive(arc, dest, TREE)
    assert listing(dest) == []
    assert not Path("/tmp/evil-abs").exists()


def test_unsafe_member_refused_in_pick_mode_too(tmp_path: Path) -> None:
    arc = make_tar(tmp_path / "ann.tar", [("annotations/a.json", b"{}"), ("../evil", b"x")], mode="w")
    with pytest.raises(UnsafeArchiveError):
        extract_archive(arc, tmp_path / "dest", Extract(mode="pick", files={"a.json": "annotations/a.json"}))
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("compression,message", [(zipfile.ZIP_STORED, "'data/a.txt' fails its CRC check"),
                                                 (zipfile.ZIP_DEFLATED, "cannot be read completely")])
def test_zip_with_bad_crc_is_detected_before_extracting(tmp_path: Path, compression: int, message: str) -> None:
    payload = b"A" * 5000
    arc = make_zip(tmp_path / "a.zip", {"data/a.txt": payload, "data/b.txt": b"ok"}, compression=compression)
    raw = bytearray(arc.read_bytes())
    with zipfile.ZipFile(arc) as zf:
        info = zf.getinfo("data/a.txt")
    # flip a byte of a.txt's compressed data (after its local header) so that its CRC fails
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 2
    raw[offset] ^= 0xFF
    arc.write_bytes(bytes(raw))
    with pytest.raises(CorruptArchiveError, match=message):
        extract_archive(arc, tmp_path / "dest", TREE)
    assert not (tmp_path / "dest").exists() or listing(tmp_path / "dest") == []


def test_truncated_tar_gz_is_detected_by_a_full_read(tmp_path: Path) -> None:
    import os
    arc = make_tar(tmp_path / "a.tar.gz", [("data/a.bin", os.urandom(200_000)), ("data/b.bin", os.urandom(200_000))])
    arc.write_bytes(arc.read_bytes()[: arc.stat().st_size * 2 // 3])
    with pytest.raises(CorruptArchiveError, match="cannot be read completely"):
        inspect_archive(arc)


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_bytes(b"<html>login required</html>")
    with pytest.raises(CorruptArchiveError, match="neither a zip nor a tar"):
        inspect_archive(tmp_path / "x.zip")


def test_tree_extraction_replaces_stale_entries_and_leaves_no_staging(tmp_path: Path) -> None:
    arc = make_zip(tmp_path / "val2017.zip", {"val2017/1.jpg": b"1", "val2017/2.jpg": b"2"})
    dest = tmp_path / "coco"
    (dest / "val2017").mkdir(parents=True)
    (dest / "val2017" / "stale.jpg").write_bytes(b"half-extracted by an older run")
    (dest / "annotations").mkdir()
    produced = extract_archive(arc, dest, TREE)
    assert produced == [dest / "val2017"]
    assert listing(dest) == ["annotations", "val2017", "val2017/1.jpg", "val2017/2.jpg"]


def test_tar_tree_extraction(tmp_path: Path) -> None:
    arc = make_tar(tmp_path / "imgs.tar.gz", [("images/a.jpg", b"a"), ("images/b.jpg", b"b")])
    extract_archive(arc, tmp_path / "mpii", TREE)
    assert (tmp_path / "mpii" / "images" / "b.jpg").read_bytes() == b"b"


def test_pick_mode_copies_named_members_wherever_they_are(tmp_path: Path) -> None:
    arc = make_tar(tmp_path / "ann.tar", [("some/prefix/annotations/aic_train.json", b"T"),
                                         ("aic_val.json", b"V"), ("other.txt", b"-")], mode="w")
    extract = Extract(mode="pick", files={"aic_train.json": "annotations/aic_train.json",
                                          "aic_val.json": "annotations/aic_val.json"})
    extract_archive(arc, tmp_path / "aic", extract)
    assert listing(tmp_path / "aic") == ["annotations", "annotations/aic_train.json", "annotations/aic_val.json"]


def test_pick_mode_names_missing_member(tmp_path: Path) -> None:
    arc = make_zip(tmp_path / "ann.zip", {"annotations/instances_val2017.json": b"{}"})
    with pytest.raises(Exception, match="person_keypoints_val2017.json.*found no member"):
        extract_archive(arc, tmp_path / "d", Extract(mode="pick", files={
            "person_keypoints_val2017.json": "annotations/person_keypoints_val2017.json"}))


def test_unsafe_name_reason() -> None:
    assert unsafe_name_reason("train2017/000000000009.jpg") is None
    assert unsafe_name_reason("a/..b/c") is None  # '..b' is a normal name
    assert unsafe_name_reason("a/../b") == "'..' component"
    assert unsafe_name_reason("/abs") == "absolute path"
