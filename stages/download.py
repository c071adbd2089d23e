"""Fetch, verify, unpack and validate a dataset or weight file (paper scale), or generate its synthetic
stand-in (smoke scale); write the item's marker (``<data-root>/<dest>/.complete.json``) last.

    python -m stages.download coco --data-root data
    python -m stages.download coco --scale smoke --data-root data/smoke --seed 0 --num-train 64 --num-val 16
    python -m stages.download mae_pretrain_vit_base        # an item may be named by its file (mae-vit-b)
    python -m stages.download mae-vit-b --url-override mae-vit-b=https://mirror.example/mae_pretrain_vit_base.pth
    python -m stages.download --list

Items and groups are listed in vitpose/download/manifest.yaml and documented in docs/DATA.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from vitpose.download import (FetchOptions, PrepareOptions, item_status, load_manifest, marker_path,
                              parse_url_overrides, prepare_item)
from vitpose.utils.errors import UserError


def _synthetic_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with a Python identifier as KEY, got {text!r}")
    return key, yaml.safe_load(value)  # 3 -> int, 0.5 -> float, true -> bool, 256x192 -> str


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stages.download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="*", metavar="ITEM", help="item or group names from the manifest")
    p.add_argument("--data-root", type=Path, default=Path("data"), help="root of the data layout (default: data)")
    p.add_argument("--scale", choices=("paper", "smoke"), default="paper",
                   help="paper: real data; smoke: generate the synthetic stand-in (default: paper)")
    p.add_argument("--manifest", type=Path, default=None, help="manifest YAML (default: the project's)")
    p.add_argument("--url-override", action="append", default=[], metavar="KEY=URL",
                   help="download source KEY (a source name, or an item with one source) from URL; repeatable; "
                        "also read from $VITPOSE_URL_OVERRIDE (whitespace-separated KEY=URL)")
    p.add_argument("--retries", type=int, default=5, help="retries per URL after a transient failure")
    p.add_argument("--retry-wait", type=float, default=2.0, help="seconds before the first retry (doubles)")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    p.add_argument("--keep-archives", action="store_true", help="keep downloaded archives after unpacking")
    p.add_argument("--force", action="store_true", help="redo items whose marker says they are complete")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list", action="store_true", help="list items, groups and their status, then exit")
    p.add_argument("--in-place", action="store_true",
                   help="paper scale: the data is already in place (a user's own data root): validate its "
                        "layout and report its counts; download nothing")
    p.add_argument("--any-counts", action="store_true",
                   help="paper scale: accept any image/annotation counts (a subset of the dataset) instead "
                        "of the full dataset's exact counts; the counts are reported in the marker")
    smoke = p.add_argument_group("smoke scale (passed to the synthetic generator)")
    smoke.add_argument("--seed", type=int, default=None)
    smoke.add_argument("--num-train", type=int, default=None)
    smoke.add_argument("--num-val", type=int, default=None)
    smoke.add_argument("--synthetic-arg", type=_synthetic_arg, action="append", default=[], metavar="KEY=VALUE",
                       help="any other generator keyword argument; repeatable")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
        smoke_params: dict[str, Any] = {k: v for k, v in (("seed", args.seed), ("num_train", args.num_train),
                                                          ("num_val", args.num_val)) if v is not None}
        if args.scale == "paper" and (smoke_params or args.synthetic_arg):
            raise UserError("--seed/--num-train/--num-val/--synthetic-arg only apply with --scale smoke")
        if args.scale == "smoke" and (args.in_place or args.any_counts):
            raise UserError("--in-place/--any-counts only apply to real data (--scale paper)")
        smoke_params.update(dict(args.synthetic_arg))
        opts = PrepareOptions(
            data_root=args.data_root, scale=args.scale,
            url_overrides=parse_url_overrides(args.url_override, manifest),
            fetch=FetchOptions(retries=args.retries, backoff=args.retry_wait, timeout=args.timeout,
                               progress=not args.no_progress),
            keep_archives=args.keep_archives, force=args.force, smoke_params=smoke_params,
            in_place=args.in_place, exact_counts=not args.any_counts,
        )
        if args.list:
            for item in manifest.items.values():
                manual = [s.manual for s in item.sources]
                kind = "manual" if all(manual) else "mixed" if any(manual) else "auto"
                print(f"{item.name:24s} {item_status(item, opts):9s} {kind:6s} {marker_path(args.data_root, item)}")
            for group, members in manifest.groups.items():
                print(f"{group:24s} group     = {' '.join(members)}")
            return 0
        if not args.items:
            raise UserError("name at least one item (see --list)")
        for item in manifest.resolve(args.items):
            prepare_item(item, opts)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
