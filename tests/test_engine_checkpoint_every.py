"""`train.checkpoint_every_iters`: state saved every N iterations too, so a run killed between saves
(no chance to save on the way out) resumes from the last N-iteration save, repeats fewer than N
iterations and still ends bit-identical to an uninterrupted run."""
from __future__ import annotations

import pytest
import torch

from engine_support import assert_same_weights, log_rows, make_synthetic, tiny_config, weights
from vitpose.config import RunConfig
from vitpose.engine.trainer import STATE_FILE, train
from vitpose.utils.errors import ConfigError


class Killed(Exception):
    """Stands for SIGKILL: leaves train() at once, without the save a requested stop makes."""


def killed_after(iterations: int):
    """A `should_stop` (polled after every iteration, after that iteration's saves) that kills."""
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        if len(calls) >= iterations:
            raise Killed(iterations)
        return False

    return should_stop


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    # 16 training instances: 4 iterations per epoch at batch 4, 12 in 3 epochs
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=12, num_val=2)


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    """An uninterrupted run that saves only at epoch ends."""
    base = tmp_path_factory.mktemp("ref")
    summary = train(RunConfig.from_dict(tiny_config(tiny_data)), base / "work", base / "model.pth",
                    progress=False)
    assert (summary["iters_per_epoch"], summary["iterations"]) == (4, 12)
    return base


def _state_iteration(work) -> int:
    return torch.load(work / STATE_FILE, map_location="cpu", weights_only=True)["iteration"]


@pytest.mark.parametrize(("every", "kill_at", "saved"), [
    (3, 7, 6),      # last save mid-epoch 1 (6 = 4 + 2): the resume replays 2 batches
    (3, 11, 9),     # N - 1 iterations lost, the most a kill between saves can cost
    (None, 7, 4),   # without N: back to the last epoch end, as before
])
def test_killed_between_saves_resumes_from_the_last_one(tiny_data, reference, tmp_path, every, kill_at, saved):
    cfg = RunConfig.from_dict(tiny_config(tiny_data, train={"checkpoint_every_iters": every}))
    work, out = tmp_path / "work", tmp_path / "model.pth"
    with pytest.raises(Killed):
        train(cfg, work, out, should_stop=killed_after(kill_at), progress=False)
    assert _state_iteration(work) == saved and not out.exists()
    assert len(log_rows(work)) == kill_at  # logged past the state: trimmed on resume

    done = train(cfg, work, out, progress=False)
    assert done["resumed_from"] == saved and not done["interrupted"]
    if every is not None:
        assert kill_at - done["resumed_from"] < every  # repeated fewer than N iterations
    assert_same_weights(weights(reference / "model.pth"), weights(out))
    assert log_rows(work) == log_rows(reference / "work")


def test_n_may_change_between_segments(tiny_data, reference, tmp_path):
    """The save cadence is not part of the state's identity (it does not change the weights)."""
    work, out = tmp_path / "work", tmp_path / "model.pth"
    first = RunConfig.from_dict(tiny_config(tiny_data, train={"checkpoint_every_iters": 5}))
    with pytest.raises(Killed):
        train(first, work, out, should_stop=killed_after(6), progress=False)
    assert _state_iteration(work) == 5
    second = RunConfig.from_dict(tiny_config(tiny_data, train={"checkpoint_every_iters": 2}))
    done = train(second, work, out, progress=False)
    assert done["resumed_from"] == 5
    assert_same_weights(weights(reference / "model.pth"), weights(out))


def test_saves_happen_at_every_nth_iteration(tiny_data, tmp_path, monkeypatch):
    import vitpose.engine.trainer as trainer

    saved = []
    real = trainer.save_state
    monkeypatch.setattr(trainer, "save_state", lambda path, **kw: saved.append(kw["iteration"]) or real(path, **kw))
    cfg = RunConfig.from_dict(tiny_config(tiny_data, train={"checkpoint_every_iters": 3}))
    train(cfg, tmp_path / "w", tmp_path / "m.pth", progress=False)
    assert saved == [3, 4, 6, 8, 9, 12]  # every 3rd iteration and every epoch end, each once


@pytest.mark.parametrize("value", [0, -2])
def test_checkpoint_every_iters_is_validated(tiny_data, value):
    with pytest.raises(ConfigError, match=rf"train\.checkpoint_every_iters: expected a positive integer "
                                          rf"or null, got {value}"):
        RunConfig.from_dict(tiny_config(tiny_data, train={"checkpoint_every_iters": value}))
    assert RunConfig.from_dict(tiny_config(tiny_data)).train.checkpoint_every_iters is None


def test_state_round_trip_keeps_the_fp16_loss_scale(tmp_path):
    """fp16 runs (GPU) scale the loss; the scale is part of the state so a resume continues with it."""
    from vitpose.engine.checkpoint import load_state, save_state

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10, enabled=True)
    scaler.scale(torch.ones(()))  # the scale tensor exists once a loss was scaled
    scaler.update(new_scale=123.0)
    save_state(tmp_path / STATE_FILE, model=model, optimizer=optimizer, scheduler=scheduler, epoch=0,
               iteration=5, scaler=scaler)
    fresh = torch.amp.GradScaler("cpu", enabled=True)
    load_state(tmp_path / STATE_FILE, model=model, optimizer=optimizer, scheduler=scheduler, scaler=fresh)
    assert fresh.get_scale() == 123.0
