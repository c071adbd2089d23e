"""RunConfig validation: bad keys, types and values are named by their key path."""
from __future__ import annotations

import copy
import json

import pytest

from vitpose.config import RunConfig, config_hash, load_run_config_file
from vitpose.utils.errors import ConfigError


def _base() -> dict:
    return {
        "run": "tiny",
        "scale": "smoke",
        "seed": 3,
        "model": {"arch": "vit", "embed_dim": 32, "depth": 2, "num_heads": 2, "input_size": [64, 48],
                  "decoder_channels": 16},
        "data": {"root": "data/x", "train_ann": "a.json", "train_images": "img", "val_ann": "b.json",
                 "val_images": "img", "det_file": "det.json", "num_workers": 0},
        "train": {"epochs": 21, "batch_size": 8, "lr": 1e-3},
        "eval": {"batch_size": 4},
    }


def _with(path: str, value) -> dict:
    d = _base()
    node = d
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return d


def test_round_trip_and_defaults():
    cfg = RunConfig.from_dict(_base())
    assert cfg.train.milestones == pytest.approx([17, 20])  # paper 170/210, 200/210 of 21 epochs
    assert cfg.train.weight_decay == 0.1 and cfg.train.lr == 1e-3  # lr is for batch_size: no scaling rule
    assert cfg.synthetic is False and cfg.paths.result_dir == f"results/{cfg.scale}/{cfg.run}"
    assert cfg.model.input_size == (64, 48) and cfg.serves == []
    d = cfg.to_dict()
    json.dumps(d)  # plain JSON
    again = RunConfig.from_dict(d)
    assert again.to_dict() == d
    assert config_hash(d) == config_hash(again.to_dict())
    assert config_hash(_with("seed", 4)) != config_hash(_base())


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("train.lr", -1, "train.lr: expected a positive number, got -1"),
        ("train.epochs", "ten", "train.epochs: expected an integer, got 'ten'"),
        ("train.precision", "fp8", "train.precision: expected one of"),
        ("train.milestones", [5, 30], "train.milestones[1]: expected an epoch in (0, 21]"),
        ("train.betas", [0.9], "train.betas: expected a list of 2 values"),
        ("train.layer_decay", 1.5, "train.layer_decay: expected a number in (0, 1], got 1.5"),
        ("train.bacth_size", 4, "train.bacth_size: unknown key"),
        ("eval.nms_threshold", 2, "eval.nms_threshold: expected a number in [0, 1], got 2"),
        ("eval.flip_test", "yes", "eval.flip_test: expected true or false"),
        ("data.num_workers", -1, "data.num_workers: expected ≥ 0"),
        ("data.det_file", None, "data.det_file: required unless data.use_gt_boxes_for_eval is true"),
        ("model.decoder", "fancy", "model.decoder: expected one of classic, simple"),
        ("model.colour", 1, "model.colour: unknown model key"),
        ("seed", 1.5, "seed: expected an integer, got 1.5"),
        ("extra_top_level", 1, "extra_top_level: unknown key"),
    ],
)
def test_bad_values_name_the_key(path, value, message):
    with pytest.raises(ConfigError) as exc:
        RunConfig.from_dict(_with(path, value))
    assert message in str(exc.value)


def test_missing_required_key():
    d = _base()
    del d["data"]["val_ann"]
    with pytest.raises(ConfigError, match=r"data\.val_ann: required key is missing"):
        RunConfig.from_dict(d)


def test_file_loading_names_the_file(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text(json.dumps(_base()))  # JSON is YAML
    assert load_run_config_file(good).run == "tiny"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_with("train.lr", -1)))
    with pytest.raises(ConfigError, match=r"bad\.json: train\.lr: expected a positive number, got -1"):
        load_run_config_file(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON"):
        load_run_config_file(broken)
    with pytest.raises(ConfigError, match=r"missing\.json: config file not found"):
        load_run_config_file(tmp_path / "missing.json")


def test_registry_shaped_config_is_accepted():
    """The lead's registry adds serves / spec / pretrained / benchmark and fractional milestones."""
    d = copy.deepcopy(_base())
    d.update(serves=[{"table": 2, "row": "vitpose-b/classic"}], spec={"model": "vitpose-b"},
             pretrained=None, benchmark={"batch": 4})
    d["train"]["milestones"] = [16.19, 19.05]
    cfg = RunConfig.from_dict(d)
    assert cfg.serves[0]["row"] == "vitpose-b/classic" and cfg.train.milestones == [16.19, 19.05]
