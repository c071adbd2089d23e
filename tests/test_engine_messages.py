"""Small user-facing messages of the training loop, each naming the file and what to do:
a truncated / corrupt `last.pth`, a training set without instances, a checkpoint holding pickled
code."""
from __future__ import annotations

import json

import pytest
import torch

from engine_support import make_synthetic, tiny_config
from vitpose.config import RunConfig
from vitpose.engine.checkpoint import STATE_FORMAT, load_state
from vitpose.engine.trainer import STATE_FILE, train
from vitpose.models import build_model
from vitpose.models.checkpoint import load_pretrained, load_vitpose_checkpoint
from vitpose.utils.errors import CheckpointError, DataError


class Gadget:
    """Any pickled object that is not a tensor or a plain value: loading it would run code."""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=8, num_val=2)


def _cfg(root, **sections) -> RunConfig:
    return RunConfig.from_dict(tiny_config(root, **sections))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_last_pth_names_the_file_and_how_to_start_over(tiny_data, tmp_path, damage):
    cfg, work = _cfg(tiny_data), tmp_path / "work"
    train(cfg, work, tmp_path / "m.pth", stop_after_iters=2, progress=False)
    state = work / STATE_FILE
    raw = state.read_bytes()
    state.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": b"\x80\x02garbage" * 20, "empty": b""}[damage])
    with pytest.raises(CheckpointError) as info:
        train(cfg, work, tmp_path / "m.pth", progress=False)
    message = str(info.value)
    assert message.startswith(f"{state}: the training state cannot be read: the file is truncated or corrupt")
    assert "--no-resume" in message and str(work) in message
    assert "\n" not in message and "weights_only" not in message
    # the advice works
    assert not train(cfg, work, tmp_path / "m.pth", resume=False, progress=False)["interrupted"]


def test_state_with_pickled_code_is_refused_in_our_words(tiny_data, tmp_path):
    state = tmp_path / STATE_FILE
    torch.save({"format": STATE_FORMAT, "epoch": 0, "iteration": 1, "model": {}, "hook": Gadget()}, state)
    model = build_model(_cfg(tiny_data).model)
    with pytest.raises(CheckpointError) as info:
        load_state(state, model=model)
    message = str(info.value)
    assert message.startswith(f"{state}: refusing to load the training state: it contains "
                              f"code/objects other than tensors")
    assert "Gadget" in message  # what it would have built
    assert "Weights only load failed" not in message and "weights_only` set to `False" not in message


def test_released_and_pretrained_files_with_pickled_code_are_refused(tiny_data, tmp_path):
    cfg = _cfg(tiny_data)
    released = tmp_path / "vitpose.pth"
    torch.save({"state_dict": build_model(cfg.model).state_dict(), "meta": Gadget()}, released)
    with pytest.raises(CheckpointError, match=r"refusing to load the checkpoint: it contains code/objects "
                                              r"other than tensors \(.*Gadget\)"):
        load_vitpose_checkpoint(build_model(cfg.model), released)
    with pytest.raises(CheckpointError, match=r"vitpose\.pth: refusing to load the pretrained checkpoint"):
        load_pretrained(build_model(cfg.model), released)
    # through the training config's `pretrained`
    with pytest.raises(CheckpointError, match=r"vitpose\.pth: refusing to load"):
        train(_cfg(tiny_data, pretrained=str(released)), tmp_path / "w", tmp_path / "m.pth", progress=False)


def test_empty_training_set_says_so_and_names_the_annotation_file(tiny_data, tmp_path):
    ann = json.loads((tiny_data / "annotations/person_keypoints_train2017.json").read_text())
    ann["annotations"] = []
    empty = tmp_path / "empty_train.json"
    empty.write_text(json.dumps(ann))
    cfg = _cfg(tiny_data, data={"train_ann": str(empty)})
    with pytest.raises(DataError) as info:
        train(cfg, tmp_path / "w", tmp_path / "m.pth", progress=False)
    message = str(info.value)
    assert message.startswith(f"{empty}: the dataset has no training instance")
    assert "batch_size" not in message  # a smaller batch would not help

    # a non-empty set too small for one batch still gets the batch-size advice
    with pytest.raises(DataError, match=r"person_keypoints_train2017\.json: \d+ training instances give no "
                                        r"full batch of 64 per process; lower train\.batch_size"):
        train(_cfg(tiny_data, train={"batch_size": 64}), tmp_path / "w2", tmp_path / "m2.pth", progress=False)
