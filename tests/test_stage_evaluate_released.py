"""`python -m stages.evaluate --released`: an authors' released checkpoint, evaluated with the run's protocol.

The released files are stood in for by tiny models saved in the released format, one of them a
multi-task file (a COCO decoder plus `associate_keypoint_heads.*`, as the authors' "*" files hold)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import stages.evaluate as evaluate_stage
from engine_support import make_synthetic, tiny_config
from stages._cli import run_main
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import save_vitpose_checkpoint
from vitpose.report.metrics import load_metrics


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("released")
    coco = make_synthetic(base / "coco", num_train=0, num_val=3)
    cfg = tiny_config(coco, run="released-tiny", serves=[{"table": 9, "row": "vitpose-b*"}],
                      paths={"result_dir": str(base / "results"), "work_dir": str(base / "work")})
    cfg["model"].pop("drop_path_rate")  # an evaluation: the file's rate need not be the run's
    config = base / "config.json"
    config.write_text(json.dumps(cfg))
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_dict(cfg["model"]))
    plain = base / "plain.pth"
    torch.save({"state_dict": model.state_dict()}, plain)  # no meta: told from the weights... if it can
    multi = base / "multi.pth"
    state = dict(model.state_dict())
    for key, value in model.keypoint_head.state_dict().items():  # an AIC decoder beside the COCO one
        state[f"associate_keypoint_heads.0.{key}"] = value.clone()
    torch.save({"state_dict": state, "meta": {"model_config": model.cfg.to_dict()}}, multi)
    return config, plain, multi, base / "results"


def evaluate(config: Path, checkpoint: Path) -> int:
    return run_main(evaluate_stage.main, ["--config", str(config), "--checkpoint", str(checkpoint), "--released",
                                          "--in-process", "--no-progress"])


def test_a_multi_task_file_is_scored_through_its_coco_decoder(run, capsys):
    config, _, multi, results = run
    assert evaluate(config, multi) == 0
    doc = load_metrics(results / "metrics.json")
    assert doc["run"] == "released-tiny" and doc["split"] == "val" and doc["metrics"]["AP"] is not None
    assert doc["serves"] == [{"table": 9, "row": "vitpose-b*"}] and doc["params_M"] > 0
    assert doc["notes"][0].startswith(f"the authors' released checkpoint {multi} (sha256 ")
    assert doc["notes"][1] == ("a multi-task file: its COCO decoder scored, its other decoders "
                               "(associate_keypoint_heads.0) left out")
    assert not any("initialised at random" in n for n in doc["notes"])  # nothing was trained here
    assert (results / "results_keypoints.json").is_file()
    capsys.readouterr()


def test_a_file_of_another_architecture_is_refused_naming_the_key(run, tmp_path, capsys):
    config, _, _, _ = run
    other = tmp_path / "wide.pth"
    save_vitpose_checkpoint(build_model(ModelConfig(arch="vit", embed_dim=48, depth=2, num_heads=2,
                                                    input_size=(64, 48), decoder_channels=16)), other)
    cfg = json.loads(config.read_text())
    cfg["paths"]["result_dir"] = str(tmp_path / "results")
    moved = tmp_path / "config.json"
    moved.write_text(json.dumps(cfg))
    assert evaluate(moved, other) == 2
    err = capsys.readouterr().err
    assert "holds a model of embed_dim 48, but run released-tiny evaluates embed_dim 32" in err
    assert not (tmp_path / "results" / "metrics.json").exists()


def test_a_file_whose_architecture_the_weights_cannot_tell_is_refused(run, tmp_path, capsys):
    """A custom-width ViT without meta: its heads are unknowable, the file is refused (not guessed)."""
    config, plain, _, _ = run
    cfg = json.loads(config.read_text())
    cfg["paths"]["result_dir"] = str(tmp_path / "results")
    moved = tmp_path / "config.json"
    moved.write_text(json.dumps(cfg))
    assert evaluate(moved, plain) == 2
    assert "number of heads cannot be told from the weights" in capsys.readouterr().err
