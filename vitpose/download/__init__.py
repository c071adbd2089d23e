"""Data and weight downloads: manifest, resumable verified fetches, safe extraction, layout validation.

Public API::

    from vitpose.download import load_manifest, prepare_item, PrepareOptions, marker_path
    manifest = load_manifest()                       # vitpose/download/manifest.yaml
    for item in manifest.resolve(["coco", "mae"]):   # item or group names
        prepare_item(item, PrepareOptions(data_root=Path("data")))
"""
from vitpose.download.archive import CorruptArchiveError, UnsafeArchiveError, extract_archive, inspect_archive
from vitpose.download.checksums import ChecksumLock, ChecksumMismatch, Digests, hash_file
from vitpose.download.fetch import DownloadError, FetchOptions, fetch
from vitpose.download.manifest import DEFAULT_MANIFEST, Item, Manifest, Source, load_manifest
from vitpose.download.manual import ManualItemMissing
from vitpose.download.overrides import ENV_VAR, parse_url_overrides
from vitpose.download.prepare import (PrepareOptions, PrepareResult, item_status, marker_path, prepare_item,
                                      read_marker)
from vitpose.download.validate import VALIDATORS, check_counts, is_training_instance, validate_item

__all__ = [
    "ChecksumLock", "ChecksumMismatch", "CorruptArchiveError", "DEFAULT_MANIFEST", "Digests", "DownloadError",
    "ENV_VAR", "FetchOptions", "Item", "Manifest", "ManualItemMissing", "PrepareOptions", "PrepareResult",
    "Source", "UnsafeArchiveError", "VALIDATORS", "check_counts", "extract_archive", "fetch", "hash_file",
    "inspect_archive", "is_training_instance", "item_status", "load_manifest", "marker_path",
    "parse_url_overrides", "prepare_item", "read_marker", "validate_item",
]
