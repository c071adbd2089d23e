"""Mirror overrides: ``--url-override KEY=URL`` and the ``VITPOSE_URL_OVERRIDE`` environment variable.

KEY is a source name (``val2017.zip``) or an item with a single source (``mae-vit-b``). Several overrides of
one key are tried in order. The environment variable holds whitespace-separated ``KEY=URL`` pairs; a key given
on the command line replaces the environment's URLs for that key. Tests use this to point items at 127.0.0.1.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from vitpose.download.manifest import Manifest
from vitpose.utils.errors import UserError

ENV_VAR = "VITPOSE_URL_OVERRIDE"


def _parse_pairs(pairs: Sequence[str], origin: str, manifest: Manifest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, url = pair.partition("=")
        if not sep or not key or "://" not in url:
            raise UserError(f"{origin}: expected KEY=URL (e.g. val2017.zip=https://mirror/val2017.zip), "
                            f"got {pair!r}")
        _, source = manifest.find_source(key)
        out.setdefault(source.name, []).append(url)
    return out


def parse_url_overrides(pairs: Sequence[str], manifest: Manifest,
                        environ: Mapping[str, str] | None = None) -> dict[str, list[str]]:
    """Source name -> URLs to use instead of the manifest's, from the environment and the command line."""
    environ = os.environ if environ is None else environ
    merged = _parse_pairs(environ.get(ENV_VAR, "").split(), f"${ENV_VAR}", manifest)
    merged.update(_parse_pairs(pairs, "--url-override", manifest))
    return merged
