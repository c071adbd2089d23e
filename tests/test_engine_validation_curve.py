"""Validation during training (`train.val_every_epochs`) and the training curve the stage writes.

- every N epochs (not after the last: stages.evaluate scores the final weights) the val AP / AR go into
  the training log as `val_*` records, without changing the weights or their resumability;
- a run killed mid-way and resumed logs the same validations as an uninterrupted one;
- `stages.finetune` writes `train_curve.csv` (loss, lr per logged iteration, val AP where validated)
  beside the weights, and `read_curve` reads it back.
"""
from __future__ import annotations

import json

import pytest

from engine_support import assert_same_weights, log_rows, make_synthetic, tiny_config, weights
from vitpose.config import RunConfig
from vitpose.engine.curve import curve_csv, read_curve
from vitpose.engine.trainer import LOG_FILE, state_hash, train
from vitpose.engine.trainlog import read_train_log


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=8, num_val=2)


def _config(data, every):
    return RunConfig.from_dict(tiny_config(data, train={"epochs": 4, "val_every_epochs": every},
                                           eval={"batch_size": 8, "flip_test": False}))


def test_validation_records_every_n_epochs_and_the_weights_do_not_change(tiny_data, tmp_path):
    cfg = _config(tiny_data, 2)
    plain = _config(tiny_data, None)
    assert state_hash(cfg) == state_hash(plain)  # the cadence is not part of a state's identity
    train(cfg, tmp_path / "val", tmp_path / "val.pth", progress=False)
    train(plain, tmp_path / "plain", tmp_path / "plain.pth", progress=False)
    assert_same_weights(weights(tmp_path / "val.pth"), weights(tmp_path / "plain.pth"))
    records = read_train_log(tmp_path / "val" / LOG_FILE)
    val = [r for r in records if "val_AP" in r]
    assert [r["epoch"] for r in val] == [1]  # after epoch 2 of 4 (index 1); the 4th is stages.evaluate's
    assert 0.0 <= val[0]["val_AP"] <= 1.0 and 0.0 <= val[0]["val_AR"] <= 1.0 and val[0]["val_time_s"] >= 0
    trained = [(r["iter"], r["loss"], r["lr"]) for r in records if "val_AP" not in r]
    assert trained == [r for r in log_rows(tmp_path / "plain")]  # the same training records otherwise


def test_a_resumed_run_logs_the_same_validations(tiny_data, tmp_path):
    cfg = _config(tiny_data, 1)
    train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=3, progress=False)
    assert part["interrupted"]
    train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False)
    ref, run = read_train_log(tmp_path / "ref" / LOG_FILE), read_train_log(tmp_path / "run" / LOG_FILE)
    assert [(r["iter"], r.get("val_AP")) for r in ref] == [(r["iter"], r.get("val_AP")) for r in run]
    assert sum("val_AP" in r for r in ref) == 3  # after epochs 1, 2 and 3 of 4
    assert_same_weights(weights(tmp_path / "ref.pth"), weights(tmp_path / "run.pth"))


def test_curve_csv_has_every_column_and_reads_back():
    records = [{"iter": 1, "epoch": 0, "loss": 0.5, "lr": 1e-3, "time": 0.1, "kd_loss": 0.2},
               {"iter": 2, "epoch": 0, "loss": 0.25, "lr": 2e-3, "time": 0.1, "kd_loss": 0.1},
               {"iter": 2, "epoch": 0, "val_AP": 0.31, "val_AR": 0.4, "val_time_s": 1.5}]
    text = curve_csv(records)
    assert text.splitlines()[0] == "iter,epoch,loss,lr,kd_loss,val_AP,val_AR,val_time_s"
    assert text.splitlines()[3] == "2,0,,,,0.31,0.4,1.5"  # a validation row: no loss, no lr


def test_the_finetune_stage_writes_the_curve_beside_the_weights(tiny_data, tmp_path):
    from stages import finetune

    cfg = tiny_config(tiny_data, train={"epochs": 2, "val_every_epochs": 1}, eval={"batch_size": 8},
                      paths={"result_dir": str(tmp_path / "results"), "work_dir": str(tmp_path / "work")})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert finetune.main(["--config", str(path), "--in-process", "--no-progress"]) == 0
    curve = read_curve(tmp_path / "results" / "train_curve.csv")
    assert (tmp_path / "results" / "model.pth").is_file()
    assert [r["iter"] for r in curve if "loss" in r] == [
        r["iter"] for r in read_train_log(tmp_path / "work" / LOG_FILE) if "loss" in r]
    assert [r["val_AP"] for r in curve if "val_AP" in r] == [
        r["val_AP"] for r in read_train_log(tmp_path / "work" / LOG_FILE) if "val_AP" in r]
    assert len([r for r in curve if "val_AP" in r]) == 1
