"""params.yaml `seeds` (every row once per seed, upstream runs per seed or shared) and a scale's
`input_scale` (the paper's geometry shrunk with the windows in proportion)."""
from __future__ import annotations

import copy

import pytest

from workflow.registry import PARAMS, Registry, scaled_geometry
from workflow.schema import load_params, validate_params
from vitpose.utils.errors import ConfigError

BASE = load_params(PARAMS)


def params_with(**changes) -> dict:
    params = copy.deepcopy(BASE)
    params.update(changes)
    return validate_params(params, "test params")


def test_every_row_runs_once_per_seed_and_the_first_seed_keeps_the_plain_id():
    reg = Registry(params_with(seeds=[3, 7]), "smoke")
    rows5 = [r for r in reg.rows if r["table"] == 5]
    assert len(rows5) == 14 and {r["seed"] for r in rows5} == {3, 7}
    plain = reg.get("vitpose-b-classic-256x192-r2-window8x8")
    repeat = reg.get("vitpose-b-classic-256x192-r2-window8x8-seed7")
    assert plain.seed == 3 and repeat.seed == 7 and plain.spec == repeat.spec
    assert reg.run_config(plain.id)["seed"] == 3 and reg.run_config(repeat.id)["seed"] == 7
    assert reg.config_hash(plain.id) != reg.config_hash(repeat.id)
    plan = reg.table_plan()
    assert {(e["run"], e["seed"]) for e in plan if e["table"] == 5 and e["row"] == "window"} == {
        (plain.id, 3), (repeat.id, 7)}


def test_teachers_and_tokens_repeat_with_their_students_and_pretraining_is_shared():
    reg = Registry(params_with(seeds=[0, 1]), "smoke")
    student = reg.get("vitpose-b-classic-256x192-kd-heatmap+token-vitpose-l-seed1")
    assert student.upstream["teacher"] == "vitpose-l-classic-256x192-seed1"
    assert student.upstream["token"] == "token-vitpose-l-classic-256x192-seed1"
    assert reg.get(student.upstream["token"]).seed == 1
    assert reg.get(student.upstream["token"]).upstream["teacher"] == "vitpose-l-classic-256x192-seed1"
    # MAE pre-training (Table 3) runs once, with the first seed, for every seed's finetuning.
    a = reg.get("vitpose-b-classic-256x192-pt-coco-crop")
    b = reg.get("vitpose-b-classic-256x192-pt-coco-crop-seed1")
    assert a.upstream["pretrain"] == b.upstream["pretrain"] == "mae-vitpose-b-coco-crop"
    assert reg.run_config("mae-vitpose-b-coco-crop")["seed"] == 0
    assert not [r for r in reg.runs if r.startswith("mae-") and "seed" in r]


@pytest.mark.parametrize("seeds", [[], [0, 0], [-1], [True], "0", [1.5]])
def test_seeds_must_be_distinct_non_negative_integers(seeds):
    with pytest.raises(ConfigError, match=r"seeds: expected a list of distinct integers >= 0"):
        params_with(seeds=seeds)


def test_the_old_single_seed_key_is_named():
    params = copy.deepcopy(BASE)
    params["seed"] = 0
    with pytest.raises(ConfigError, match=r"seed: unknown key"):
        validate_params(params, "test params")


def test_smoke_geometry_halves_inputs_and_windows_on_the_same_token_grid():
    reg = Registry(BASE, "smoke")
    assert BASE["scales"]["smoke"]["input_scale"] == 0.5
    model = reg.run_config("vitpose-b-classic-256x192-r2-window8x8")["model"]
    assert model["input_size"] == [128, 96] and model["window_size"] == [4, 4]
    # 32x24 tokens in 8x8 windows at paper scale; 16x12 tokens in 4x4 windows here: 4x3 windows both.
    paper = Registry(BASE, "paper").run_config("vitpose-b-classic-256x192-r2-window8x8")["model"]
    assert paper["input_size"] == [256, 192] and paper["window_size"] == [8, 8]
    for m, stride in ((model, 8), (paper, 8)):
        grid = [s // stride for s in m["input_size"]]
        assert [g // w for g, w in zip(grid, m["window_size"])] == [4, 3]
    big = reg.run_config("vitpose-b-classic-256x192-r2-window16x12-shift-pool")["model"]
    assert big["window_size"] == [8, 6]
    # 576x432 -> 288x216, rounded to the nearest multiple of the ViT's stride 16: 288x224
    assert reg.run_config("vitpose-b-classic-576x432")["model"]["input_size"] == [288, 224]
    # ResNets keep inputs divisible by their stride 32
    assert reg.run_config("resnet50-classic-256x192")["model"]["input_size"] == [128, 96]
    # the target Gaussian keeps its width relative to the person: sigma 2 on 64x48 heatmaps, 1 on 32x24
    assert reg.run_config("vitpose-b-classic-256x192")["data"]["sigma"] == 1.0
    assert Registry(BASE, "paper").run_config("vitpose-b-classic-256x192")["data"]["sigma"] == 2.0
    # run ids and descriptions keep the paper's sizes, and say what is used
    assert "256x192 (as 128x96 at this scale)" in reg.describe("vitpose-b-classic-256x192-r2-window8x8")
    assert "window attention 8x8 (as 4x4)" in reg.describe("vitpose-b-classic-256x192-r2-window8x8")


def test_scaled_geometry_rounds_to_the_stride_and_keeps_at_least_one():
    spec = {"input": "256x192", "window": "8x8"}
    assert scaled_geometry(spec, 1, 16) == ([256, 192], [8, 8])
    assert scaled_geometry(spec, 0.25, 32) == ([64, 64], [2, 2])  # 48 is 1.5 strides: rounds up
    assert scaled_geometry({"input": "16x16", "window": "1x1"}, 0.1, 16) == ([16, 16], [1, 1])


@pytest.mark.parametrize("value", [0, -0.5, 1.5, "half"])
def test_input_scale_must_be_a_fraction(value):
    params = copy.deepcopy(BASE)
    params["scales"]["smoke"]["input_scale"] = value
    with pytest.raises(ConfigError, match=r"scales\.smoke\.input_scale: expected a number > 0 and <= 1"):
        validate_params(params, "test params")
