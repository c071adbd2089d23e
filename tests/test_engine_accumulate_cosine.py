"""Two pieces of the loop that MAE pre-training needs: gradient accumulation (an effective batch larger
than the processes hold at once) and the warm-up + half-cycle cosine schedule."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from engine_support import assert_same_weights, log_rows, make_synthetic, tiny_config, weights
from vitpose.config import RunConfig
from vitpose.engine.schedule import WarmupCosineFactor
from vitpose.engine.trainer import ENV_MICRO_BATCH, accumulation_steps, train
from vitpose.utils.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=8, num_val=2)


@pytest.mark.parametrize("batch, cap, steps", [(16, None, 1), (16, "16", 1), (16, "4", 4), (16, "5", 4),
                                               (16, "6", 4), (12, "5", 3), (7, "2", 7), (8, "100", 1)])
def test_accumulation_steps_split_the_batch_evenly(batch, cap, steps):
    env = {} if cap is None else {ENV_MICRO_BATCH: cap}
    assert accumulation_steps(batch, env) == steps
    assert batch % steps == 0 and (cap is None or batch // steps <= int(cap))


@pytest.mark.parametrize("bad", ["0", "-3", "big", "1.5"])
def test_a_bad_micro_batch_names_the_variable(bad):
    with pytest.raises(ConfigError, match=rf"\${ENV_MICRO_BATCH}: expected a positive integer.*{bad!r}"):
        accumulation_steps(16, {ENV_MICRO_BATCH: bad})


def _cfg(root, **train):
    # simple decoder (no BatchNorm) and no drop path: micro-batches then give the full batch's gradient
    return RunConfig.from_dict(tiny_config(root, model={"decoder": "simple", "drop_path_rate": 0.0},
                                           train={"batch_size": 4, "epochs": 2, **train}))


def test_accumulated_micro_batches_train_like_the_full_batch(tiny_data, tmp_path, monkeypatch):
    cfg = _cfg(tiny_data)
    ref = train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    monkeypatch.setenv(ENV_MICRO_BATCH, "2")
    acc = train(cfg, tmp_path / "acc", tmp_path / "acc.pth", progress=False)
    assert ref["accumulate"] == 1 and acc["accumulate"] == 2
    assert acc["iterations"] == ref["iterations"] and acc["iters_per_epoch"] == ref["iters_per_epoch"]
    a, b = weights(tmp_path / "ref.pth"), weights(tmp_path / "acc.pth")
    for key in a:  # the same optimizer steps up to float rounding (sums in another order)
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=2e-5, msg=key)
    ref_log, acc_log = log_rows(tmp_path / "ref"), log_rows(tmp_path / "acc")
    assert [r[0] for r in acc_log] == [r[0] for r in ref_log]
    for (_, la, lra), (_, lb, lrb) in zip(ref_log, acc_log):
        assert lb == pytest.approx(la, rel=1e-4) and lrb == lra


def test_accumulation_resumes_mid_epoch_bit_identically(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MICRO_BATCH, "2")
    cfg = _cfg(tiny_data)
    ref = train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    stop = ref["iters_per_epoch"] + 1
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=stop, progress=False)
    assert part["interrupted"] and part["iterations"] == stop
    done = train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False)
    assert done["resumed_from"] == stop
    assert_same_weights(weights(tmp_path / "ref.pth"), weights(tmp_path / "run.pth"))
    assert log_rows(tmp_path / "ref") == log_rows(tmp_path / "run")


def test_cosine_factor_warms_up_then_follows_the_half_cosine():
    f = WarmupCosineFactor(total_iters=100, warmup_iters=10, min_ratio=0.1)
    assert f(0) == 0.0 and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert f(100) == pytest.approx(0.1) and f(55) == pytest.approx(0.55)
    values = [f(i) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone after the warm-up


def test_a_cosine_run_uses_warmup_epochs_and_ends_at_min_lr(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, lr_schedule="cosine", warmup_epochs=1, min_lr=1e-5, epochs=3)
    summary = train(cfg, tmp_path / "w", tmp_path / "m.pth", progress=False)
    ipe = summary["iters_per_epoch"]
    rows = log_rows(tmp_path / "w")  # (iter, loss, lr) after each iteration; lr of the next step
    lrs = {it: lr for it, _, lr in rows}
    assert lrs[ipe // 2] == pytest.approx(1e-3 * (ipe // 2) / ipe)  # linear warm-up over one epoch
    assert lrs[ipe] == pytest.approx(1e-3)                          # peak at the end of the warm-up
    assert lrs[3 * ipe] == pytest.approx(1e-5)                      # min_lr at the end


def test_cosine_settings_are_validated():
    with pytest.raises(ConfigError, match=r"train\.warmup_epochs: expected fewer than the run's 3 epochs"):
        RunConfig.from_dict(tiny_config(Path("/x"),
                                        train={"lr_schedule": "cosine", "warmup_epochs": 3}))
    with pytest.raises(ConfigError, match=r"train\.min_lr: expected less than lr"):
        RunConfig.from_dict(tiny_config(Path("/x"), train={"min_lr": 1.0}))
    with pytest.raises(ConfigError, match=r"train\.lr_schedule"):
        RunConfig.from_dict(tiny_config(Path("/x"), train={"lr_schedule": "poly"}))
