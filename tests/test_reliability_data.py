"""Reliability of image reading: a truncated image is refused, naming the file, instead of read as grey.

cv2.imread returns an image for a JPEG cut short (the missing rows grey; libjpeg only prints "Premature end
of JPEG file"), so the dataset's None check never fired and half-copied images trained silently.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from vitpose.data.dataset import TopDownCocoDataset
from vitpose.data.image_io import read_image_bgr, truncation
from vitpose.data.keypoints import COCO
from vitpose.utils.errors import DataError

W, H = 80, 60


def _jpeg(progressive: bool = False, size: tuple[int, int] = (H, W)) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return buf.tobytes()


def _png() -> bytes:
    ok, buf = cv2.imencode(".png", np.full((H, W, 3), 7, np.uint8))
    assert ok
    return buf.tobytes()


def _with_thumbnail(main: bytes) -> bytes:
    """``main`` with an EXIF (APP1) thumbnail: a whole small JPEG, end marker included, before the image."""
    thumb = _jpeg(size=(8, 8))
    payload = b"Exif\x00\x00" + thumb
    return main[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + main[2:]


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _dataset(tmp_path: Path, image_bytes: bytes | None) -> TopDownCocoDataset:
    img_dir = tmp_path / "images"
    img_dir.mkdir(parents=True)
    if image_bytes is not None:
        (img_dir / "a.jpg").write_bytes(image_bytes)
    kpts = [0.0] * (3 * COCO.num_keypoints)
    kpts[:3] = [30.0, 30.0, 2.0]
    ann = {"images": [{"id": 7, "file_name": "a.jpg", "width": W, "height": H}],
           "annotations": [{"id": 5, "image_id": 7, "category_id": 1, "iscrowd": 0, "num_keypoints": 1,
                            "bbox": [10, 10, 40, 40], "area": 1600, "keypoints": kpts}]}
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps(ann))
    return TopDownCocoDataset(ann_file, img_dir, COCO, (64, 48), (16, 12), train=False)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_truncated_jpeg_is_a_data_error_naming_the_file(tmp_path, progressive):
    ds = _dataset(tmp_path, _cut(_jpeg(progressive)))
    with pytest.raises(DataError) as err:
        ds[0]
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "images" / "a.jpg")) and "truncated JPEG" in msg
    assert "annotation id 5, image id 7" in msg


def test_truncated_jpeg_with_exif_thumbnail_is_refused():
    """The thumbnail's end marker (before the main image's scan) must not pass for the image's own."""
    whole = _with_thumbnail(_jpeg())
    assert cv2.imdecode(np.frombuffer(whole, np.uint8), cv2.IMREAD_COLOR).shape == (H, W, 3)
    assert truncation(whole) is None
    assert truncation(_cut(whole)) is not None


@pytest.mark.parametrize("tail", [b"", b"\x00" * 5000, b"\n", b"trailing bytes of another program"],
                         ids=["plain", "nul-padding", "newline", "trailing-data"])
def test_complete_jpeg_is_read_as_imread_reads_it(tmp_path, tail):
    path = tmp_path / "a.jpg"
    path.write_bytes(_jpeg() + tail)
    np.testing.assert_array_equal(read_image_bgr(path), cv2.imread(str(path), cv2.IMREAD_COLOR))


def test_truncated_png_is_refused(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_png()[:-12])  # without the IEND chunk
    with pytest.raises(DataError, match=r"a\.png: .*(truncated PNG|corrupt)"):
        read_image_bgr(path)
    path.write_bytes(_png())
    assert read_image_bgr(path).shape == (H, W, 3)


def test_empty_and_missing_images_are_named(tmp_path):
    with pytest.raises(DataError, match=r"a\.jpg: image file is empty.*annotation id 5"):
        _dataset(tmp_path / "e", b"")[0]
    with pytest.raises(DataError, match=r"a\.jpg: image file not found.*annotation id 5"):
        _dataset(tmp_path / "m", None)[0]
