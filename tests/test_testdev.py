"""COCO test-dev (Table 10): the synthetic stand-in, the server's submission format, the score import,
and the two stage commands end to end on tiny models."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from engine_support import make_synthetic, tiny_config
from stages import testdev as testdev_stage
from stages import testdev_scores as scores_stage
from stages._cli import run_main
from vitpose.data.synthetic import TESTDEV_LAYOUT, generate_synthetic_coco_testdev
from vitpose.evaluation.testdev import (
    check_submission,
    load_image_list,
    read_server_scores,
    submission_file_name,
    write_submission,
)
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import save_vitpose_checkpoint
from vitpose.report.metrics import load_metrics
from vitpose.utils.errors import DataError, UserError


@pytest.fixture(scope="module")
def testdev(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("testdev")
    generate_synthetic_coco_testdev(root, seed=0, num_val=4, image_size=(96, 128), max_people=3, progress=False)
    return root


def image_info(root: Path) -> Path:
    return root / TESTDEV_LAYOUT["image_info"]


def results_for(ids, per_image: int = 2) -> list[dict]:
    out = []
    for image_id in ids:
        for k in range(per_image):
            out.append({"image_id": image_id, "category_id": 1,
                        "keypoints": [float(v) for v in torch.rand(51).mul(90).tolist()], "score": 0.5 + k / 10})
    return out


def test_synthetic_testdev_has_the_real_layout_and_no_keypoints(testdev, tmp_path):
    info = json.loads(image_info(testdev).read_text())
    assert "annotations" not in info and len(info["images"]) == 4
    assert all((testdev / "test2017" / im["file_name"]).is_file() for im in info["images"])
    dets = json.loads((testdev / TESTDEV_LAYOUT["detections"]).read_text())
    assert dets and {d["image_id"] for d in dets} <= {im["id"] for im in info["images"]}
    again = tmp_path / "again"
    generate_synthetic_coco_testdev(again, seed=0, num_val=4, image_size=(96, 128), max_people=3, progress=False)
    assert (again / TESTDEV_LAYOUT["detections"]).read_bytes() == (testdev / TESTDEV_LAYOUT["detections"]).read_bytes()


def test_submission_is_in_the_servers_format(testdev, tmp_path):
    coco = load_image_list(image_info(testdev))
    ids = coco.getImgIds()
    json_path, zip_path = write_submission(results_for(ids), coco, image_info(testdev), tmp_path, "vitpose-g")
    assert json_path.name == "person_keypoints_test-dev2017_vitpose-g_results.json"
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.namelist() == [json_path.name]  # alone, at the archive's root
    for path in (json_path, zip_path):
        clean = check_submission(path, image_info(testdev))
        assert len(clean) == 2 * len(ids) and {r["image_id"] for r in clean} == set(ids)
        assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in clean)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([json_path.name, zip_path.name])


def test_submission_missing_an_image_is_rejected(testdev, tmp_path):
    coco = load_image_list(image_info(testdev))
    ids = coco.getImgIds()
    with pytest.raises(DataError, match=rf"no result for 1 image\(s\) of .*\(ids {ids[-1]}\)"):
        write_submission(results_for(ids[:-1]), coco, image_info(testdev), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written
    # ... unless the image is not required (no detection on it: nothing to submit)
    write_submission(results_for(ids[:-1]), coco, image_info(testdev), tmp_path, required_ids=ids[:-1])


@pytest.mark.parametrize("change, message", [
    ({"image_id": 42}, "not in"),
    ({"category_id": 2}, "category_id 2"),
    ({"keypoints": [0.0] * 50}, "expected 51 finite keypoint values"),
    ({"score": float("nan")}, "has score nan"),
])
def test_submission_with_a_bad_result_is_rejected(testdev, tmp_path, change, message):
    coco = load_image_list(image_info(testdev))
    results = results_for(coco.getImgIds())
    results.append({**results[0], **change})
    with pytest.raises(DataError, match=message):
        write_submission(results, coco, image_info(testdev), tmp_path)


def test_zip_with_another_layout_is_rejected(testdev, tmp_path):
    path = tmp_path / "upload.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("results/" + submission_file_name(), "[]")
    with pytest.raises(DataError, match="at the archive's root"):
        check_submission(path, image_info(testdev))
    with pytest.raises(UserError, match="letters, digits and hyphens"):
        submission_file_name("vit_pose")


SUMMARY = "\n".join(
    f" Average {'Precision' if i < 5 else 'Recall   '}  ({'AP' if i < 5 else 'AR'}) @[ IoU=0.50:0.95 | area=   all | "
    f"maxDets= 20 ] = {v:.3f}" for i, v in enumerate([0.809, 0.948, 0.881, 0.775, 0.859, 0.854, 0.97, 0.9, 0.8, 0.9]))


@pytest.mark.parametrize("text, form", [
    (json.dumps({"AP": 0.809, "AP50": 0.948, "APm": 0.775, "AR_L": -1, "date": "2024-05-01"}), "metrics"),
    (json.dumps({"AP": 80.9, "AP50": 94.8, "unit": "percent", "date": "2024-05-01"}), "metrics"),
    (json.dumps({"stats": [0.809, 0.948, 0.881, 0.775, 0.859, 0.854, 0.97, 0.9, 0.8, 0.9],
                 "date": "2024-05-01"}), "stats"),
    (SUMMARY, "summary"),
])
def test_server_scores_forms(tmp_path, text, form):
    path = tmp_path / "scores.txt"
    path.write_text(text)
    scores = read_server_scores(path, date="2024-05-01" if form == "summary" else None)
    assert scores.form == form and scores.date == "2024-05-01"
    assert scores.metrics["AP"] == pytest.approx(0.809) and scores.metrics["AP50"] == pytest.approx(0.948)
    if form == "metrics" and "APm" in text:
        assert scores.metrics["APM"] == pytest.approx(0.775) and scores.metrics["ARL"] is None


@pytest.mark.parametrize("doc, message", [
    ({"AP": 80.9, "date": "2024-05-01"}, 'AP: expected a fraction in \\[0, 1\\], got 80.9; for percentages add "unit"'),
    ({"AP": 0.8}, 'no scoring date; add "date"'),
    ({"AP": 0.8, "date": "May 1"}, "expected YYYY-MM-DD"),
    ({"AP50": 0.9, "date": "2024-05-01"}, "AP: missing"),
    ({"mAP": 0.8, "date": "2024-05-01"}, "key 'mAP': expected one of AP"),
    ({"stats": [0.8], "date": "2024-05-01"}, "a list of 10 numbers"),
])
def test_server_scores_errors_name_the_key(tmp_path, doc, message):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message):
        read_server_scores(path)


# ---------------------------------------------------------------------------------------- the stages
@pytest.fixture(scope="module")
def run(testdev, tmp_path_factory):
    """A Table 10 run config on synthetic COCO val, and two tiny members' checkpoints."""
    base = tmp_path_factory.mktemp("run")
    coco = make_synthetic(base / "coco", num_train=0, num_val=3)
    cfg = tiny_config(coco, run="tiny-g", serves=[{"table": 10, "row": "vitpose-g"}],
                      model={"arch": "vitae"}, paths={"result_dir": str(base / "results"),
                                                      "work_dir": str(base / "work")})
    config = base / "config.json"
    config.write_text(json.dumps(cfg))
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model(ModelConfig.from_dict(cfg["model"]))
        members.append(base / f"member{seed}.pth")
        save_vitpose_checkpoint(model, members[-1])
    return config, members, base / "results"


def submit(config, members, testdev, *extra) -> int:
    args = ["--config", str(config), "--image-info", str(image_info(testdev)), "--images",
            str(testdev / "test2017"), "--det-file", str(testdev / TESTDEV_LAYOUT["detections"]),
            "--no-progress", "--in-process", *extra]
    for m in members:
        args += ["--checkpoint", str(m)]
    return run_main(testdev_stage.main, args)


def test_stages_write_the_submission_then_import_the_servers_scores(run, testdev, tmp_path, capsys):
    config, members, results = run
    assert submit(config, members, testdev) == 0
    manifest = json.loads((results / "testdev_submission.json").read_text())
    assert manifest["images"] == 4 and manifest["results"] >= manifest["images_with_results"] > 0
    detected = {d["image_id"] for d in json.loads((testdev / TESTDEV_LAYOUT["detections"]).read_text())}
    clean = check_submission(results / manifest["zip"], image_info(testdev), required_ids=detected)
    assert {r["image_id"] for r in clean} == detected  # every image a box was detected on
    val = load_metrics(results / "val_metrics.json")
    assert val["split"] == "val" and val["notes"][0].startswith("ensemble of 2 models")
    assert (results / "val_results_keypoints.json").is_file() and not (results / "metrics.json").exists()

    scores = tmp_path / "server.json"  # what the COCO server would return, written by the test
    scores.write_text(json.dumps({"AP": 0.4, "AP50": 0.7, "AR": 0.5, "date": "2024-05-01"}))
    assert run_main(scores_stage.main, ["--config", str(config), "--scores", str(scores)]) == 0
    doc = load_metrics(results / "metrics.json")
    assert doc["split"] == "test-dev" and doc["metrics"]["AP"] == 0.4 and doc["metrics"]["APM"] is None
    assert doc["notes"][0] == "scored by the COCO server on 2024-05-01"
    assert doc["serves"] == [{"table": 10, "row": "vitpose-g"}] and doc["params_M"] == val["params_M"]
    capsys.readouterr()

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"AP": 40, "date": "2024-05-01"}))
    assert run_main(scores_stage.main, ["--config", str(config), "--scores", str(bad)]) == 2
    assert "AP: expected a fraction" in capsys.readouterr().err
    assert load_metrics(results / "metrics.json")["metrics"]["AP"] == 0.4  # left as it was

    changed = tmp_path / "changed.json"  # another configuration of the run: not what was submitted
    changed.write_text(json.dumps({**json.loads(config.read_text()), "eval": {"batch_size": 3}}))
    assert run_main(scores_stage.main, ["--config", str(changed), "--scores", str(scores)]) == 2
    assert "not the record of this configuration" in capsys.readouterr().err


def test_submit_with_a_bad_detection_file_exits_2_and_writes_nothing(run, testdev, tmp_path, capsys):
    config, members, _ = run
    cfg = json.loads(config.read_text())
    cfg["paths"]["result_dir"] = str(tmp_path / "results")
    other = tmp_path / "config.json"
    other.write_text(json.dumps(cfg))
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 1.0}]))
    code = submit(other, members[:1], testdev, "--det-file", str(dets))
    err = capsys.readouterr().err
    assert code == 2 and "image id 7, which is not in the annotation file's images" in err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())


def test_members_are_the_upstream_roles_in_order():
    cfg = type("Cfg", (), {"run": "g+", "upstream": {"member10": "c", "member2": "b", "member1": "a",
                                                      "pretrain": "mae"}})()
    assert testdev_stage.member_runs(cfg) == ["a", "b", "c"]
    cfg.upstream = {"teacher": "x"}
    with pytest.raises(UserError, match="expected roles member1, member2"):
        testdev_stage.member_runs(cfg)


def test_the_dag_declares_the_files_the_stage_writes():
    """workflow/kinds.py declares the submission's files by RUN_FILES; the writer names them itself."""
    from vitpose.config import RUN_FILES
    from vitpose.evaluation.testdev import DEFAULT_NAME, submission_zip_name

    assert RUN_FILES["testdev_results"] == submission_file_name(DEFAULT_NAME)
    assert RUN_FILES["testdev_zip"] == submission_zip_name(DEFAULT_NAME)
    assert (testdev_stage.VAL_METRICS_FILE, testdev_stage.MANIFEST_FILE) == (RUN_FILES["val_metrics"],
                                                                            RUN_FILES["testdev_record"])


def test_the_smoke_download_item_generates_and_validates_the_stand_in(tmp_path, capsys):
    """`python -m stages.download coco-testdev --scale smoke` (what the DAG's data job runs) writes the
    layout the Table 10 job reads, checked like the real item: every listed image present."""
    from stages import download
    from workflow.registry import DATASET_FILES

    root = tmp_path / "data"
    assert download.main(["coco-testdev", "--scale", "smoke", "--data-root", str(root), "--seed", "0",
                          "--num-train", "1", "--num-val", "3", "--no-progress"]) == 0
    marker = json.loads((root / "coco-testdev" / ".complete.json").read_text())
    assert marker["counts"]["testdev_images"] == 3 and marker["counts"]["detection_boxes"] > 0
    for rel in DATASET_FILES["coco-testdev"].values():
        assert (root / "coco-testdev" / rel).exists(), rel
    info = root / "coco-testdev" / DATASET_FILES["coco-testdev"]["image_info"]
    first = json.loads(info.read_text())["images"][0]["file_name"]
    (root / "coco-testdev" / "test2017" / first).unlink()
    from vitpose.download.manifest import load_manifest
    from vitpose.download.validate import validate_item

    with pytest.raises(DataError, match=rf"1 image\(s\) referenced by .*image_info_test-dev2017.json are missing.*{first}"):
        validate_item(root / "coco-testdev", load_manifest().items["coco-testdev"].validate, expected={})
    capsys.readouterr()
