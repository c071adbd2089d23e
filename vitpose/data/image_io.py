"""Reading image files, refusing the ones that are missing, empty, not images or cut short.

``cv2.imread`` decodes a truncated JPEG without failing: libjpeg prints "Premature end of JPEG file" and the
missing rows come back grey, so a half-copied image would silently train and evaluate as a grey crop.
The file is therefore read once into memory, checked for its format's end marker (cheap: a few bytes
at the end in the common case), and decoded from that buffer with the same decoder as ``cv2.imread``.

Decoded images can be kept in memory (:func:`configure_image_cache`, params.yaml
``scales.<s>.train.image_cache_mb``): a small dataset is then decoded once per process instead of once
per sample and epoch. The pixels are the same either way.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import cv2
import numpy as np

from vitpose.utils.errors import DataError

_JPEG_SOI, _JPEG_SOS, _JPEG_EOI = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"  # the IEND chunk type and its (constant) CRC
# Bytes some writers append after the end marker (NUL padding, a newline); they are not truncation.
_PADDING = b"\x00\r\n\t "
_TAIL = 4096  # how many final bytes the fast check looks at


def truncation(data: bytes) -> str | None:
    """Why ``data`` (a JPEG or PNG file's bytes) looks cut short, or None if it looks complete.

    JPEG: the end-of-image marker must follow the last start-of-scan marker. The byte pair FF D9 cannot
    occur inside entropy-coded data (an FF there is always followed by 00 or a restart marker), so this
    accepts files with trailing bytes after the image and rejects an EXIF thumbnail's end marker standing
    in for the main image's. Other formats are left to the decoder.
    """
    if data.startswith(_JPEG_SOI):
        if data[-_TAIL:].rstrip(_PADDING).endswith(_JPEG_EOI):
            return None  # the common case, decided from the last bytes without scanning the file
        if data.rfind(_JPEG_EOI) > data.rfind(_JPEG_SOS) >= 0:
            return None
        return "truncated JPEG: no end-of-image marker (FF D9) after the image data"
    if data.startswith(_PNG_SIGNATURE) and data.rfind(_PNG_IEND) < 0:  # searched from the end: found at once
        return "truncated PNG: no IEND chunk"
    return None


class DecodedImageCache:
    """Decoded images by file (path, size and modification time), least recently used evicted first,
    at most ``max_bytes`` of pixels. Arrays are returned read-only: every caller shares them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._images: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def get(self, key: tuple) -> np.ndarray | None:
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def put(self, key: tuple, image: np.ndarray) -> None:
        if image.nbytes > self.max_bytes:
            return
        image.setflags(write=False)
        self._images[key] = image
        self.bytes += image.nbytes
        while self.bytes > self.max_bytes:
            _, old = self._images.popitem(last=False)
            self.bytes -= old.nbytes


_cache: DecodedImageCache | None = None


def configure_image_cache(megabytes: int) -> None:
    """Keep up to ``megabytes`` MiB of decoded images in this process (0: none, the default).

    Each process has its own cache (a DataLoader worker fills its own), so the memory used is up to
    this much per process. Reconfiguring with the same size keeps what is cached."""
    global _cache
    if megabytes < 0:
        raise ValueError(f"image cache size: expected >= 0 MiB, got {megabytes}")
    size = int(megabytes) << 20
    if _cache is not None and _cache.max_bytes == size:
        return
    _cache = DecodedImageCache(size) if size else None


def read_image_bgr(path: str | os.PathLike, what: str = "") -> np.ndarray:
    """The image at ``path`` as BGR uint8 (H, W, 3), as ``cv2.imread(path, IMREAD_COLOR)`` gives it.

    ``what`` names the item that needs the image (added to error messages). Raises DataError whose
    message starts with the path when the file is missing, empty, not a decodable image, or truncated.
    With the cache on (:func:`configure_image_cache`) the array may be a shared read-only one.
    """
    if _cache is None:
        return _decode_file(path, what)
    try:
        st = os.stat(path)
    except OSError:
        return _decode_file(path, what)  # the decoder's path names the error
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    image = _cache.get(key)
    if image is None:
        image = _decode_file(path, what)
        _cache.put(key, image)
    return image


def _decode_file(path: str | os.PathLike, what: str) -> np.ndarray:
    suffix = f" ({what})" if what else ""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found{suffix}") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise DataError(f"{path}: image file cannot be read ({exc.strerror or exc}){suffix}") from None
    if not data:
        raise DataError(f"{path}: image file is empty (0 bytes){suffix}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    # Checked whether or not the decoder accepted the file: some builds fill the missing rows with grey,
    # others refuse, and "truncated" says more than "corrupt".
    why = truncation(data)
    if why is not None:
        raise DataError(f"{path}: image file is corrupt: {why}; copy or download it again{suffix}")
    if image is None:
        raise DataError(f"{path}: image file is corrupt or not an image{suffix}")
    return image
