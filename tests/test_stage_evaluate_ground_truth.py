"""Ground truth submitted as the predictions scores perfectly on every dataset, through `stages.evaluate`.

A tiny COCO + AIC + MPII + CrowdPose run is trained for one epoch (so the stage has its real
model.pth / model_multi.pth), then evaluated by the stage command with the model's keypoints replaced
by each val instance's ground truth (ground-truth boxes, so one crop per person): the stage's whole
path (config.json, per-dataset decoders, each dataset's protocol, metrics.json) must give AP 1.0 on
COCO, AIC and CrowdPose and PCKh 1.0 on MPII. The replacement (a monkeypatch of
`vitpose.engine.inference.predict_keypoints`) is the one stand-in: it is what makes the answer known.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import stages.evaluate as stage
import vitpose.engine.inference as inference
from engine_support import make_synthetic, make_synthetic_other, other_data_section, tiny_config
from vitpose.config import RunConfig, run_config_document
from vitpose.data.transforms import bbox_xyxy_to_center_scale
from vitpose.engine.trainer import train
from vitpose.report.metrics import load_metrics

DATASETS = ("aic", "mpii", "crowdpose")


def ground_truth_keypoints(model, dataset, batch_size, flip_test, device, *, num_workers=0, progress=True):
    """What `predict_keypoints` returns, with each crop's ground-truth keypoints as the prediction."""
    insts = dataset.instances
    k = dataset.meta.num_keypoints
    coords = np.stack([i.keypoints[:, :2] if i.keypoints is not None else np.zeros((k, 2)) for i in insts])
    boxes = [bbox_xyxy_to_center_scale(np.array(i.bbox)) for i in insts]
    return {"coords": coords.astype(np.float32), "scores": np.ones((len(insts), k), np.float32),
            "centers": np.stack([c for c, _ in boxes]).astype(np.float32),
            "scales": np.stack([s for _, s in boxes]).astype(np.float32),
            "box_scores": np.ones(len(insts), np.float32),
            "image_ids": np.array([i.image_id for i in insts], np.int64)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("gt")
    raw = tiny_config(make_synthetic(base / "coco", num_train=3, num_val=3), run="gt",
                      train={"epochs": 1, "batch_size": 4},
                      data={"use_gt_boxes_for_eval": True})
    raw["extra_data"] = [other_data_section(d, make_synthetic_other(d, base / d, num_train=2, num_val=3))
                         for d in DATASETS]
    raw["paths"] = {"result_dir": str(base / "results"), "work_dir": str(base / "work")}
    cfg = RunConfig.from_dict(raw)
    train(cfg, base / "work", base / "results" / "model.pth", progress=False)
    config = base / "results" / "config.json"
    config.write_text(json.dumps(run_config_document(cfg)))
    return config, base / "results"


def test_ground_truth_scores_one_on_every_dataset(run, monkeypatch):
    config, results = run
    monkeypatch.setattr(inference, "predict_keypoints", ground_truth_keypoints)
    assert stage.main(["--config", str(config), "--in-process", "--no-progress"]) == 0
    m = load_metrics(results / "metrics.json")
    assert m["metrics"]["AP"] == pytest.approx(1.0)
    per = m["per_dataset"]
    assert set(per) == {"coco", *DATASETS}
    for name in ("coco", "aic", "crowdpose"):
        assert per[name]["AP"] == pytest.approx(1.0), name
    assert per["mpii"]["PCKh"] == pytest.approx(1.0)
    for name in DATASETS:  # each dataset's results file, next to the primary one
        assert (results / f"results_keypoints_{name}.json").is_file()
    assert any("CrowdPose" in n for n in m["notes"])  # the overlap with COCO val is said


def test_the_check_can_fail(run, monkeypatch):
    """Keypoints moved by a few pixels no longer score 1.0: the test above measures something."""
    config, results = run

    def shifted(*args, **kwargs):
        out = ground_truth_keypoints(*args, **kwargs)
        out["coords"] = out["coords"] + 6.0
        return out

    monkeypatch.setattr(inference, "predict_keypoints", shifted)
    assert stage.main(["--config", str(config), "--in-process", "--no-progress"]) == 0
    per = load_metrics(results / "metrics.json")["per_dataset"]
    assert per["aic"]["AP"] < 1.0 and per["mpii"]["PCKh"] < 1.0
