"""Figure 3: qualitative results, a grid of val images with a run's predicted poses drawn on them.

`qualitative_figure(results, images, meta)` draws `num_images` images (a grid, `columns` wide) with
the skeletons and keypoint scores of the run's COCO keypoint results (vitpose.visualize.draw_poses, the
drawing `stages.predict` uses); `figure3(..., out_stem)` writes it to `<out_stem>.pdf` and
`<out_stem>.png`, each atomically.
Which images: those with at least one result scoring `instance_threshold` or more (all images when
none has), in image-id order, evenly spaced over that list, so the choice is reproducible and not
picked by hand. `synthetic=True` (the smoke scale) puts the smoke-scale banner in the title.
The PNG's text chunk / the PDF's Subject hold what is drawn (`read_png_data`), for tests and the index.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from vitpose.data.dataset import _load_json
from vitpose.data.image_io import read_image_bgr
from vitpose.data.keypoints import KeypointMeta
from vitpose.report.pareto import SYNTHETIC_BANNER
from vitpose.report.savefig import save_png_and_pdf
from vitpose.utils.errors import DataError
from vitpose.utils.io import atomic_path
from vitpose.visualize import draw_poses, poses_from_results

METADATA_KEY = "vitpose-figure3"
DEFAULT_TITLE = "Qualitative results on COCO val"
DRAW_SIZE = 480  # small (smoke-scale) images are enlarged to this short side before drawing


def coco_image_files(ann_file: str | os.PathLike, img_dir: str | os.PathLike) -> dict[int, Path]:
    """{image id: image path} of a COCO annotation file's `images` under `img_dir`."""
    data = _load_json(str(ann_file), "annotation")
    try:
        return {img["id"]: Path(img_dir) / img["file_name"] for img in data["images"]}
    except (KeyError, TypeError) as exc:
        raise DataError(f"{ann_file}: expected a COCO annotation file with images [{{id, file_name}}] "
                        f"({type(exc).__name__}: {exc})") from None


def select_images(results: Sequence[dict], image_ids: Sequence[int], num_images: int,
                  instance_threshold: float = 0.0) -> list[int]:
    """`num_images` ids evenly spaced over the sorted ids with a result scoring >= instance_threshold
    (over all `image_ids` when none has one)."""
    scored = {r["image_id"] for r in results if r.get("score", 1.0) >= instance_threshold}
    pool = sorted(i for i in image_ids if i in scored) or sorted(image_ids)
    if len(pool) <= num_images:
        return pool
    return [pool[int(i)] for i in np.linspace(0, len(pool) - 1, num_images).round()]


def _read_results(results: Sequence[dict] | str | os.PathLike) -> list[dict]:
    if not isinstance(results, (str, os.PathLike)):
        return list(results)
    data = _load_json(str(results), "results")
    if not isinstance(data, list):
        raise DataError(f"{results}: expected a list of COCO keypoint results")
    return data


def qualitative_figure(results: Sequence[dict] | str | os.PathLike, images: Mapping[int, str | os.PathLike],
                       meta: KeypointMeta, *, num_images: int = 6, columns: int = 3, synthetic: bool = False,
                       title: str = DEFAULT_TITLE, keypoint_threshold: float = 0.3,
                       instance_threshold: float = 0.0) -> tuple[Figure, dict]:
    """The grid as a matplotlib Figure, and what it shows ({"images": [{image_id, persons}], ...}).

    results: COCO keypoint results (a list, or the path of results_keypoints.json); images: {image
    id: file}; meta: the keypoint layout of the results (skeleton, sides). Poses scoring below
    `instance_threshold` and keypoints below `keypoint_threshold` are not drawn.
    """
    results = [r for r in _read_results(results) if r.get("score", 1.0) >= instance_threshold]
    chosen = select_images(results, list(images), num_images, instance_threshold)
    if not chosen:
        raise DataError("figure 3: no val images to draw")
    pictures = [read_image_bgr(images[i], f"figure 3, image id {i}") for i in chosen]
    columns = max(1, min(columns, len(chosen)))
    rows = math.ceil(len(chosen) / columns)
    aspect = np.median([p.shape[0] / p.shape[1] for p in pictures])  # panel height / width
    fig = Figure(figsize=(3.2 * columns, (3.2 * aspect + 0.3) * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    drawn = []
    for ax, image_id, picture in zip(axes, chosen, pictures):
        poses, scores = poses_from_results(results, image_id, meta.num_keypoints)
        image = draw_poses(picture, poses, meta, instance_scores=scores, keypoint_threshold=keypoint_threshold,
                           min_size=DRAW_SIZE)
        ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        ax.set_title(f"image {image_id}: {len(poses)} person{'s' if len(poses) != 1 else ''}", fontsize=8)
        drawn.append({"image_id": int(image_id), "persons": len(poses)})
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"{title}\n{SYNTHETIC_BANNER}" if synthetic else title,
                 color="crimson" if synthetic else "black", fontsize=11)
    return fig, {"images": drawn, "synthetic": synthetic, "keypoint_threshold": keypoint_threshold,
                 "instance_threshold": instance_threshold}


def figure3(results: Sequence[dict] | str | os.PathLike, images: Mapping[int, str | os.PathLike],
            meta: KeypointMeta, out_stem: str | os.PathLike, **options) -> tuple[Path, Path]:
    """Draw `qualitative_figure(results, images, meta, **options)` and write `<out_stem>.pdf` and
    `<out_stem>.png` (each atomically, with what is drawn in their metadata); returns their paths."""
    fig, data = qualitative_figure(results, images, meta, **options)
    blob = json.dumps(data, sort_keys=True)
    out_stem = Path(out_stem)
    pdf, png = out_stem.with_name(out_stem.name + ".pdf"), out_stem.with_name(out_stem.name + ".png")
    with atomic_path(pdf) as tmp_pdf, atomic_path(png) as tmp_png:
        save_png_and_pdf(fig, tmp_png, tmp_pdf,
                         dict(dpi=150, metadata={"Title": "ViTPose Figure 3", METADATA_KEY: blob}),
                         dict(metadata={"Title": "ViTPose Figure 3", "Subject": blob}))
    return pdf, png


def read_png_data(png_path: str | os.PathLike) -> dict:
    """What `figure3` drew, from its PNG."""
    from PIL import Image

    with Image.open(png_path) as img:
        return json.loads(img.text[METADATA_KEY])
