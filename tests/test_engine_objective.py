"""The training loop is objective-agnostic: a second (test-only) objective — a student regressing a
frozen teacher on a toy dataset — runs through the same `train()` with exact resume, N-iteration
saves, the log (with its extra scalar) and export, without a line of loop code of its own."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from engine_support import assert_same_weights, log_rows, make_synthetic, tiny_config
from vitpose.config import RunConfig
from vitpose.engine.objective import HeatmapObjective, Models, Objective, TrainModules
from vitpose.engine.trainer import STATE_FILE, train
from vitpose.utils.errors import CheckpointError
from vitpose.utils.io import atomic_torch_save

DIM, OUT, SAMPLES = 6, 3, 10


class ToyDataset(Dataset):
    """SAMPLES fixed vectors plus noise drawn from (seed, epoch, index): the loop's resume contract."""

    accepts_sample_keys = True

    def __init__(self) -> None:
        self.x = torch.randn(SAMPLES, DIM, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return SAMPLES

    def __getitem__(self, key):
        g = torch.Generator().manual_seed(key.seed * 1_000_003 + key.epoch * 1_009 + key.index)
        return {"x": self.x[key.index] + 0.1 * torch.randn(DIM, generator=g)}


class Distill(Objective):
    """Student MLP (with dropout: the saved RNG matters) regresses a frozen linear teacher."""

    name = "toy-distill"

    def __init__(self) -> None:
        self.seen_frozen: list[tuple[bool, bool]] = []  # (teacher in train mode, teacher needs grad)

    def build(self, cfg: RunConfig) -> TrainModules:
        student = nn.Sequential(nn.Linear(DIM, 16), nn.GELU(), nn.Dropout(0.3), nn.Linear(16, OUT))
        teacher = nn.Linear(DIM, OUT)
        return TrainModules(student, frozen={"teacher": teacher})

    def build_dataset(self, cfg: RunConfig) -> Dataset:
        return ToyDataset()

    def loss(self, batch, models: Models):
        x = models.to_device(batch["x"])                      # (B, DIM)
        teacher = models.frozen["teacher"]
        self.seen_frozen.append((teacher.training, any(p.requires_grad for p in teacher.parameters())))
        with torch.no_grad():
            target = teacher(x)                              # (B, OUT)
        with models.autocast():
            pred = models.net(x)                             # (B, OUT)
        return nn.functional.mse_loss(pred.float(), target), {"target_abs": target.abs().mean()}

    def export(self, model, path, cfg, summary) -> None:
        atomic_torch_save(path, {"toy": model.state_dict(), "iterations": summary["iterations"]})


class OtherName(Distill):
    name = "toy-other"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    # only for the config's data section (the toy objective brings its own dataset)
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=2, num_val=1)


def _cfg(data, **train) -> RunConfig:
    # 10 samples / batch 2 = 5 iterations per epoch, 15 in all
    return RunConfig.from_dict(tiny_config(data, train={"epochs": 3, "batch_size": 2,
                                                        "log_every_iters": 2, **train}))


def _toy(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["toy"]


def test_second_objective_resumes_bit_identically_through_the_same_loop(tiny_data, tmp_path):
    cfg = _cfg(tiny_data, checkpoint_every_iters=4)
    objective = Distill()
    ref = train(cfg, tmp_path / "ref", tmp_path / "ref.pth", progress=False, objective=objective)
    assert (ref["iters_per_epoch"], ref["iterations"], ref["interrupted"]) == (5, 15, False)
    assert objective.seen_frozen and set(objective.seen_frozen) == {(False, False)}  # eval, no grad
    assert _toy(tmp_path / "ref.pth").keys() == {"0.weight", "0.bias", "3.weight", "3.bias"}

    # Stopped mid-epoch 1 and mid log interval (7 = 5 + 2, odd), then resumed.
    part = train(cfg, tmp_path / "run", tmp_path / "run.pth", stop_after_iters=7, progress=False,
                 objective=Distill())
    assert part["interrupted"] and part["iterations"] == 7 and not (tmp_path / "run.pth").exists()
    state = torch.load(tmp_path / "run" / STATE_FILE, map_location="cpu", weights_only=True)
    assert state["extra"]["objective"] == "toy-distill" and state["iteration"] == 7
    assert not any(k.startswith("teacher") for k in state["model"])  # frozen models are not saved
    assert "target_abs" in state["extra"]["log_sums"]  # the open interval of the extra scalar too

    done = train(cfg, tmp_path / "run", tmp_path / "run.pth", progress=False, objective=Distill())
    assert done["resumed_from"] == 7 and done["iterations"] == 15 and not done["interrupted"]
    assert_same_weights(_toy(tmp_path / "ref.pth"), _toy(tmp_path / "run.pth"))
    keys = ("iter", "epoch", "loss", "target_abs", "lr")
    assert log_rows(tmp_path / "run", keys) == log_rows(tmp_path / "ref", keys)
    assert [r[0] for r in log_rows(tmp_path / "ref")] == [2, 4, 6, 8, 10, 12, 14, 15]
    assert all(r[3] is not None and r[3] > 0 for r in log_rows(tmp_path / "ref", keys))


def test_the_comparison_can_fail_and_states_of_other_objectives_are_refused(tiny_data, tmp_path):
    cfg = _cfg(tiny_data)
    train(cfg, tmp_path / "a", tmp_path / "a.pth", progress=False, objective=Distill())
    other_seed = RunConfig.from_dict({**cfg.to_dict(), "seed": cfg.seed + 1})
    train(other_seed, tmp_path / "b", tmp_path / "b.pth", progress=False, objective=Distill())
    a, b = _toy(tmp_path / "a.pth"), _toy(tmp_path / "b.pth")
    assert not all(torch.equal(a[k], b[k]) for k in a)

    train(cfg, tmp_path / "w", tmp_path / "w.pth", stop_after_iters=3, progress=False, objective=Distill())
    with pytest.raises(CheckpointError, match=r"last\.pth: training state of a different configuration "
                                              r"\(config hash, objective"):
        train(cfg, tmp_path / "w", tmp_path / "w.pth", progress=False, objective=OtherName())
    # the default objective cannot take the toy's state either (another model)
    with pytest.raises(CheckpointError, match=r"last\.pth"):
        train(cfg, tmp_path / "w", tmp_path / "w.pth", progress=False, objective=HeatmapObjective())


def test_reserved_log_names_are_refused(tiny_data, tmp_path):
    class Clashing(Distill):
        def loss(self, batch, models):
            loss, _ = super().loss(batch, models)
            return loss, {"lr": loss.detach()}

    with pytest.raises(ValueError, match="objective scalar 'lr'"):
        train(_cfg(tiny_data), tmp_path / "w", tmp_path / "w.pth", progress=False, objective=Clashing())


def test_the_loop_hands_its_precision_to_the_objective(tiny_data, tmp_path):
    """`models.autocast()` is the run's precision: bf16 autocast here (CPU), fp32 by default."""
    dtypes = []

    class Recording(Distill):
        def loss(self, batch, models):
            with models.autocast():
                dtypes.append(models.net(models.to_device(batch["x"])).dtype)
            return super().loss(batch, models)

    summary = train(_cfg(tiny_data, epochs=1, precision="bf16"), tmp_path / "w", tmp_path / "w.pth",
                    progress=False, objective=Recording())
    assert summary["precision"] == "bf16" and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    train(_cfg(tiny_data, epochs=1), tmp_path / "w2", tmp_path / "w2.pth", progress=False, objective=Recording())
    assert set(dtypes) == {torch.float32}
