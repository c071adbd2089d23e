"""A run killed mid-training and resumed ends with exactly the weights of an uninterrupted run."""
from __future__ import annotations

import json

import pytest
import torch

from engine_support import make_synthetic, tiny_config
from vitpose.config import RunConfig
from vitpose.engine.trainer import LOG_FILE, STATE_FILE, train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=8, num_val=2)


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _log(work):
    return [json.loads(line) for line in (work / LOG_FILE).read_text().splitlines()]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_killed_and_resumed_run_is_bit_identical(tiny_data, tmp_path, num_workers):
    # log every 2 iterations, killed after an odd number: the kill falls inside a log interval
    cfg = RunConfig.from_dict(tiny_config(tiny_data, data={"num_workers": num_workers},
                                          train={"log_every_iters": 2}))

    ref = train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False)
    ipe = ref["iters_per_epoch"]
    assert ipe >= 2 and ref["iterations"] == 3 * ipe and not ref["interrupted"]

    # Killed mid-epoch 1 (after ipe + 1 iterations): state saved, no weights exported.
    stop = ipe + 1
    assert stop % ipe != 0 and stop % 2 == 1  # mid-epoch and mid log interval
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=stop, progress=False)
    assert part["interrupted"] and part["iterations"] == stop
    assert (tmp_path / "run" / STATE_FILE).exists() and not (tmp_path / "run.pth").exists()
    # Pretend the kill came after a few more logged iterations that the state does not hold.
    with open(tmp_path / "run" / LOG_FILE, "a") as f:
        f.write(json.dumps({"iter": stop + 1, "epoch": 1, "loss": 9.0, "lr": 0.0, "time": 0.0}) + "\n")

    done = train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False)
    assert done["resumed_from"] == stop and done["iterations"] == ref["iterations"]

    a, b = _weights(tmp_path / "ref.pth"), _weights(tmp_path / "run.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The log of the resumed run is the uninterrupted run's, line for line (stale lines dropped).
    assert [(r["iter"], r["loss"], r["lr"]) for r in _log(tmp_path / "run")] == \
           [(r["iter"], r["loss"], r["lr"]) for r in _log(tmp_path / "ref")]


def test_resume_without_state_differs_and_should_stop_hook(tiny_data, tmp_path):
    """The comparison above can fail: a different seed gives different weights; should_stop interrupts."""
    base = tiny_config(tiny_data)
    calls = []

    def stop_on_third_call() -> bool:
        calls.append(1)
        return len(calls) >= 3

    cfg = RunConfig.from_dict(base)
    part = train(cfg, tmp_path / "w", tmp_path / "m.pth", should_stop=stop_on_third_call, progress=False)
    assert part["interrupted"] and part["iterations"] == 3 and not (tmp_path / "m.pth").exists()
    ref = train(cfg, tmp_path / "w", tmp_path / "m.pth", progress=False)
    assert ref["resumed_from"] == 3 and (tmp_path / "m.pth").exists()

    other = RunConfig.from_dict({**base, "seed": 8})
    train(other, tmp_path / "w2", tmp_path / "m2.pth", progress=False)
    a, b = _weights(tmp_path / "m.pth"), _weights(tmp_path / "m2.pth")
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_state_of_another_config_is_refused(tiny_data, tmp_path):
    from vitpose.utils.errors import CheckpointError

    cfg = RunConfig.from_dict(tiny_config(tiny_data))
    train(cfg, tmp_path / "w", tmp_path / "m.pth", stop_after_iters=1, progress=False)
    changed = RunConfig.from_dict(tiny_config(tiny_data, train={"lr": 2e-3}))
    with pytest.raises(CheckpointError, match="last.pth: training state of a different configuration"):
        train(changed, tmp_path / "w", tmp_path / "m.pth", progress=False)
    # resume=False starts over instead
    summary = train(changed, tmp_path / "w", tmp_path / "m.pth", resume=False, progress=False)
    assert summary["resumed_from"] == 0 and not summary["interrupted"]
