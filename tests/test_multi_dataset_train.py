"""A tiny COCO + AIC multi-dataset run through `train()`: chosen by `extra_data`, stopped and resumed
bit-identically, exported as a released single-dataset model.pth plus model_multi.pth, and evaluated
per dataset (COCO, AIC, MPII) with each dataset's own decoder and protocol."""
from __future__ import annotations

import json

import pytest
import torch

from engine_support import (
    assert_same_weights,
    log_rows,
    make_synthetic,
    make_synthetic_other,
    other_data_section,
    tiny_config,
    weights,
)
from vitpose.config import RunConfig
from vitpose.data.sampler import RatioSampler
from vitpose.engine.inference import evaluate
from vitpose.engine.multi_dataset import MultiDatasetObjective
from vitpose.engine.trainer import STATE_FILE, Trainer, train
from vitpose.evaluation.coco_eval import STAT_NAMES
from vitpose.evaluation.pckh import METRIC_NAMES as PCKH_METRICS
from vitpose.models import build_model
from vitpose.models.checkpoint import load_vitpose_checkpoint
from vitpose.utils.errors import CheckpointError, ConfigError, DataError

LOG_KEYS = ("iter", "epoch", "loss", "loss_coco", "loss_aic", "n_coco", "n_aic", "lr")


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("multi")
    return {"coco": make_synthetic(base / "coco", num_train=4, num_val=2),
            "aic": make_synthetic_other("aic", base / "aic", num_train=3, num_val=2),
            "mpii": make_synthetic_other("mpii", base / "mpii", num_train=2, num_val=2)}


def _cfg(roots, extra=("aic",), ratios=None, **train) -> RunConfig:
    raw = tiny_config(roots["coco"], train={"epochs": 2, "log_every_iters": 1, **train})
    raw["extra_data"] = [other_data_section(name, roots[name]) for name in extra]
    if ratios is not None:
        for section, ratio in zip([raw["data"], *raw["extra_data"]], ratios):
            section["ratio"] = ratio
    return RunConfig.from_dict(raw)


def _log(work) -> list[dict]:
    return [json.loads(line) for line in (work / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("ratios", [None, [1.0, 3.0]], ids=["union", "ratios"])
def test_two_dataset_run_resumes_bit_identically_and_exports_both_files(roots, tmp_path, ratios):
    cfg = _cfg(roots, ratios=ratios)
    ref = train(cfg, tmp_path / "ref", tmp_path / "ref" / "model.pth", progress=False)
    ipe = ref["iters_per_epoch"]
    assert ipe >= 2 and ref["iterations"] == 2 * ipe and not ref["interrupted"]

    stop = ipe + 1  # mid-epoch 1
    part = train(cfg, tmp_path / "run", tmp_path / "run" / "model.pth", stop_after_iters=stop, progress=False)
    assert part["interrupted"] and not (tmp_path / "run" / "model.pth").exists()
    assert not (tmp_path / "run" / "model_multi.pth").exists()
    state = torch.load(tmp_path / "run" / STATE_FILE, map_location="cpu", weights_only=True)
    assert state["extra"]["objective"] == "multi-dataset"  # chosen by extra_data, no objective given
    done = train(cfg, tmp_path / "run", tmp_path / "run" / "model.pth", progress=False)
    assert done["resumed_from"] == stop and done["iterations"] == ref["iterations"]

    for name in ("model.pth", "model_multi.pth"):
        assert_same_weights(weights(tmp_path / "ref" / name), weights(tmp_path / "run" / name))
    assert log_rows(tmp_path / "run", LOG_KEYS) == log_rows(tmp_path / "ref", LOG_KEYS)

    # The log: each dataset's share of the loss (they sum to it) and its instances per batch.
    for row in _log(tmp_path / "ref"):
        assert row["n_coco"] + row["n_aic"] == cfg.train.batch_size
        assert row["loss_coco"] + row["loss_aic"] == pytest.approx(row["loss"], rel=1e-5)
    # model.pth: decoder 0 in the released single-dataset format, loading into a plain model.
    plain = build_model(cfg.model)
    load_vitpose_checkpoint(plain, tmp_path / "ref" / "model.pth", strict=True)
    multi = torch.load(tmp_path / "ref" / "model_multi.pth", map_location="cpu", weights_only=True)
    single = weights(tmp_path / "ref" / "model.pth")
    assert {k.split(".")[0] for k in single} == {"backbone", "keypoint_head"}
    for key, value in single.items():
        assert torch.equal(multi["state_dict"][key], value), key
    assert multi["state_dict"]["associate_keypoint_heads.0.final_layer.weight"].shape[0] == 14
    meta = multi["meta"]
    assert (meta["datasets"], meta["num_keypoints"], meta["keypoints"], meta["config_hash"]) == \
        (["coco", "aic"], [17, 14], ["coco", "aic"], cfg.hash)


def test_the_logged_counts_are_the_samplers_and_follow_the_ratios(roots, tmp_path):
    cfg = _cfg(roots, ratios=[1.0, 3.0], epochs=1)
    trainer = Trainer(cfg, tmp_path / "w", tmp_path / "model.pth", MultiDatasetObjective(), progress=False)
    sampler = trainer.s.loader.sampler.base
    assert isinstance(sampler, RatioSampler)
    sizes = [len(d) for d in trainer.s.loader.dataset.datasets]
    assert sampler.counts[1] == round(sum(sizes) * 3 / 4) and sum(sampler.counts) == sum(sizes)
    sampler.set_epoch(0)
    order = sampler.epoch_indices().tolist()
    b = cfg.train.batch_size
    expected = [sum(i >= sizes[0] for i in order[j * b:(j + 1) * b]) for j in range(len(order) // b)]
    train(cfg, tmp_path / "w", tmp_path / "model.pth", progress=False)
    assert [r["n_aic"] for r in _log(tmp_path / "w")] == expected
    assert [r["n_coco"] for r in _log(tmp_path / "w")] == [b - n for n in expected]


def test_evaluate_returns_every_datasets_metrics(roots, tmp_path):
    cfg = _cfg(roots, epochs=1)
    out = tmp_path / "out"
    train(cfg, tmp_path / "w", out / "model.pth", progress=False)
    metrics = evaluate(cfg, out / "model.pth", out, progress=False)
    assert set(metrics) == {*STAT_NAMES, "per_dataset"}
    per = metrics["per_dataset"]
    assert list(per) == ["coco", "aic"]
    assert set(per["coco"]) == set(per["aic"]) == set(STAT_NAMES)
    assert {k: metrics[k] for k in STAT_NAMES} == per["coco"]
    assert (out / "results_keypoints.json").is_file() and (out / "results_keypoints_aic.json").is_file()
    aic_results = json.loads((out / "results_keypoints_aic.json").read_text())
    assert aic_results and all(len(r["keypoints"]) == 14 * 3 for r in aic_results)

    # The primary dataset's numbers are those of model.pth evaluated as a single-dataset run (whose
    # return is unchanged: no per_dataset).
    single = _cfg(roots, epochs=1)
    single.extra_data = []
    assert evaluate(single, out / "model.pth", tmp_path / "single", progress=False) == per["coco"]

    # A model_multi.pth of another training, or none at all, is refused by name.
    obj = torch.load(out / "model_multi.pth", map_location="cpu", weights_only=True)
    obj["meta"]["config_hash"] = "f" * 64
    torch.save(obj, out / "model_multi.pth")
    with pytest.raises(CheckpointError, match=r"model_multi\.pth: written by another training"):
        evaluate(cfg, out / "model.pth", out, progress=False)
    (out / "model_multi.pth").rename(out / "moved.pth")
    with pytest.raises(CheckpointError, match=r"model_multi\.pth: no such file"):
        evaluate(cfg, out / "model.pth", out, progress=False)


def test_three_datasets_evaluate_with_their_own_protocols(roots, tmp_path):
    cfg = _cfg(roots, extra=("aic", "mpii"))
    metrics = evaluate(cfg, None, tmp_path, progress=False)  # an untrained model: only the plumbing
    per = metrics["per_dataset"]
    assert list(per) == ["coco", "aic", "mpii"] and set(per["mpii"]) == set(PCKH_METRICS)
    mpii = json.loads((tmp_path / "results_keypoints_mpii.json").read_text())
    val = json.loads((roots["mpii"] / "annotations/mpii_val.json").read_text())
    assert [r["instance_index"] for r in mpii] == list(range(len(val)))  # one per person, file order
    assert all(len(r["keypoints"]) == 16 * 3 for r in mpii)


def test_bad_input_names_the_dataset(roots, tmp_path):
    empty = tmp_path / "empty_aic.json"
    data = json.loads((roots["aic"] / "annotations/aic_train.json").read_text())
    empty.write_text(json.dumps({**data, "annotations": []}))
    cfg = _cfg(roots)
    cfg.extra_data[0].train_ann = str(empty)
    with pytest.raises(DataError, match=r"empty_aic\.json: the dataset has no training instance \(extra_data\[0\]"):
        train(cfg, tmp_path / "w", tmp_path / "model.pth", progress=False)
    assert not (tmp_path / "w").exists()

    raw = _cfg(roots).to_dict()
    raw["model"]["num_keypoints"] = 14
    with pytest.raises(ConfigError, match="model.num_keypoints: 14"):
        train(RunConfig.from_dict(raw), tmp_path / "w", tmp_path / "model.pth", progress=False)

    cfg = _cfg(roots, extra=("mpii",))
    cfg.extra_data[0].use_gt_boxes_for_eval = False
    with pytest.raises(ConfigError, match=r"extra_data\[0\]\.use_gt_boxes_for_eval"):
        evaluate(cfg, None, tmp_path, progress=False)
