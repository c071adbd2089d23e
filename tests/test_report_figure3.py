"""Figure 3: a grid of val images with a run's poses drawn, written as PDF + PNG, labelled at smoke scale."""
from __future__ import annotations

import json

import pytest

from vitpose.data.keypoints import COCO
from vitpose.data.synthetic import generate_synthetic_coco
from vitpose.report.figure3 import coco_image_files, figure3, qualitative_figure, read_png_data, select_images
from vitpose.report.pareto import SYNTHETIC_BANNER
from vitpose.utils.errors import DataError


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    """Five synthetic val images and "results" made from their ground truth (score 0.9 where labelled)."""
    root = tmp_path_factory.mktemp("fig3")
    generate_synthetic_coco(root, num_train=1, num_val=5, image_size=(96, 128), progress=False)
    ann_file = root / "annotations" / "person_keypoints_val2017.json"
    anns = json.loads(ann_file.read_text())["annotations"]
    results = [{"image_id": a["image_id"], "category_id": 1, "score": 0.9,
                "keypoints": [v if i % 3 != 2 else 0.9 * (v > 0) for i, v in enumerate(a["keypoints"])]}
               for a in anns if not a.get("iscrowd")]
    return {"images": coco_image_files(ann_file, root / "val2017"), "results": results, "root": root}


def test_grid_written_as_pdf_and_png_with_what_it_draws(val, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(val["results"]))
    pdf, png = figure3(tmp_path / "results.json", val["images"], COCO, tmp_path / "figure3_qualitative",
                       num_images=4, synthetic=True)
    assert pdf.read_bytes().startswith(b"%PDF") and png.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure3_qualitative.pdf", "figure3_qualitative.png",
                                                          "results.json"]  # no temporary left
    drawn = read_png_data(png)
    assert drawn["synthetic"] is True and len(drawn["images"]) == 4
    persons = {i: sum(r["image_id"] == i for r in val["results"]) for i in val["images"]}
    assert all(d["persons"] == persons[d["image_id"]] for d in drawn["images"])


def test_smoke_scale_label_only_when_synthetic(val):
    fig, _ = qualitative_figure(val["results"], val["images"], COCO, num_images=2, synthetic=True)
    assert SYNTHETIC_BANNER in fig._suptitle.get_text()
    fig, data = qualitative_figure(val["results"], val["images"], COCO, num_images=2, title="ViTPose-B")
    assert fig._suptitle.get_text() == "ViTPose-B" and data["synthetic"] is False
    assert len(fig.axes) == 2


def test_image_choice_is_reproducible_and_prefers_images_with_poses():
    results = [{"image_id": i, "score": 0.9} for i in (2, 4, 6, 8, 10)] + [{"image_id": 3, "score": 0.1}]
    ids = list(range(1, 11))
    assert select_images(results, ids, 3, instance_threshold=0.5) == [2, 6, 10]
    assert select_images(results, ids, 10, instance_threshold=0.5) == [2, 4, 6, 8, 10]
    assert select_images([], [5, 1], 3) == [1, 5]  # nothing predicted: the images still show


def test_missing_image_or_annotation_file_is_named(val, tmp_path):
    images = dict(val["images"])
    first = min(images)
    images[first] = tmp_path / "gone.jpg"
    with pytest.raises(DataError, match=r"gone\.jpg: image file not found \(figure 3, image id"):
        figure3(val["results"], images, COCO, tmp_path / "f3", num_images=5)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match=r"nope\.json: annotation file not found"):
        coco_image_files(tmp_path / "nope.json", tmp_path)
