"""`python -m stages.finetune` / `stages.evaluate`: outputs, metrics.json schema, and user errors."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stages.evaluate as evaluate_stage
from engine_support import make_synthetic, tiny_config
from stages import finetune as finetune_stage
from stages._cli import run_main
from vitpose.utils.errors import UserError

REPO = Path(__file__).resolve().parents[1]
STAT_KEYS = ["AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "coco", num_train=6, num_val=3)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A one-epoch tiny model trained through the finetune command."""
    base = tmp_path_factory.mktemp("trained")
    config = base / "run.json"
    config.write_text(json.dumps(tiny_config(data, train={"epochs": 1})))
    out = base / "results" / "model.pth"
    code = run_main(finetune_stage.main, ["--config", str(config), "--work-dir", str(base / "work"),
                                          "--out", str(out), "--no-progress"])
    assert code == 0 and out.is_file()
    return config, out


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg))
    return path


def test_finetune_bad_config_exits_2_names_key_and_writes_nothing(data, tmp_path):
    cfg = tiny_config(data, train={"lr": -1})
    config = _write(tmp_path / "bad.json", cfg)
    work, out = tmp_path / "work", tmp_path / "results" / "model.pth"
    proc = subprocess.run(
        [sys.executable, "-m", "stages.finetune", "--config", str(config), "--work-dir", str(work),
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "train.lr: expected a positive number, got -1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not work.exists() and not out.parent.exists()


def test_evaluate_bad_config_exits_2_names_key(data, trained, tmp_path, capsys):
    _, checkpoint = trained
    config = _write(tmp_path / "bad.yaml", tiny_config(data, eval={"nms_threshold": 2}))
    out_dir = tmp_path / "eval"
    code = run_main(evaluate_stage.main, ["--config", str(config), "--checkpoint", str(checkpoint),
                                          "--out-dir", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "eval.nms_threshold" in err
    assert not out_dir.exists()


def test_evaluate_writes_metrics_json(data, trained, tmp_path):
    config, checkpoint = trained
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"train_memory_MB": 123.0,
                                 "throughput": {"images_per_s": 50.0, "device": "cpu", "batch": 4,
                                                "precision": "fp32"}}))
    out_dir = tmp_path / "results"
    code = run_main(evaluate_stage.main, ["--config", str(config), "--checkpoint", str(checkpoint),
                                          "--out-dir", str(out_dir), "--benchmark", str(bench),
                                          "--no-progress"])
    assert code == 0
    m = json.loads((out_dir / "metrics.json").read_text())
    assert (out_dir / "results_keypoints.json").is_file()
    assert m["schema"] == "vitpose-metrics/1"
    assert (m["run"], m["scale"], m["synthetic"]) == ("tiny", "smoke", True)
    assert m["serves"] == [{"table": 2, "row": "vitpose-b/classic"}]
    assert (m["dataset"], m["split"], m["boxes"]) == ("coco", "val", "detected")
    canonical = json.dumps(m["config"], sort_keys=True, separators=(",", ":"))
    assert m["config_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert m["config"]["train"]["lr"] == 1e-3 and m["config"]["model"]["embed_dim"] == 32
    assert list(m["metrics"]) == STAT_KEYS
    # fractions in [0, 1]; pycocotools' -1 (no ground truth in that area range) is stored as null
    assert all(v is None or 0.0 <= v <= 1.0 for v in m["metrics"].values())
    assert 0 < m["backbone_params_M"] < m["params_M"] < 1.0
    assert m["gflops"] > 0 and m["trainable_gflops"] == pytest.approx(m["gflops"])
    assert m["train_memory_MB"] == 123.0 and m["throughput"]["images_per_s"] == 50.0
    assert m["wall_time_s"] > 0
    assert m["git_commit"] is None or len(m["git_commit"]) == 40


def test_evaluate_failure_leaves_no_partial_outputs(data, trained, tmp_path, monkeypatch, capsys):
    """An error after results_keypoints.json was written removes it: no half-finished run dir.

    The failure is injected in this (the launching) process, after the job has written the results."""
    config, checkpoint = trained

    def broken_notes(cfg):
        raise UserError("run notes: simulated failure")

    monkeypatch.setattr(evaluate_stage, "run_notes", broken_notes)
    out_dir = tmp_path / "results"
    code = run_main(evaluate_stage.main, ["--config", str(config), "--checkpoint", str(checkpoint),
                                          "--out-dir", str(out_dir), "--no-progress"])
    assert code == 2 and "simulated failure" in capsys.readouterr().err
    assert not (out_dir / "results_keypoints.json").exists() and not (out_dir / "metrics.json").exists()


@pytest.mark.parametrize("problem", ["missing_checkpoint", "bad_benchmark", "missing_config"])
def test_evaluate_user_errors_name_the_file(data, trained, tmp_path, capsys, problem):
    config, checkpoint = trained
    args = {"--config": str(config), "--checkpoint": str(checkpoint), "--out-dir": str(tmp_path / "o")}
    if problem == "missing_checkpoint":
        args["--checkpoint"] = str(tmp_path / "nope.pth")
    elif problem == "bad_benchmark":
        (tmp_path / "b.json").write_text(json.dumps({"train_memory_MB": "lots"}))
        args["--benchmark"] = str(tmp_path / "b.json")
    else:
        args["--config"] = str(tmp_path / "absent.json")
    argv = [x for kv in args.items() for x in kv]
    code = run_main(evaluate_stage.main, argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ")
    expected = {"missing_checkpoint": "nope.pth", "bad_benchmark": "train_memory_MB",
                "missing_config": "absent.json"}[problem]
    assert expected in err
    assert not (tmp_path / "o").exists()


def test_finetune_data_error_exits_2_without_weights(data, tmp_path, capsys):
    """A problem found once training starts (here: the annotation file is missing) leaves no weights."""
    cfg = tiny_config(data, data={"train_ann": str(tmp_path / "missing_train.json")})
    config = _write(tmp_path / "run.json", cfg)
    out = tmp_path / "results" / "model.pth"
    code = run_main(finetune_stage.main, ["--config", str(config), "--work-dir", str(tmp_path / "w"),
                                          "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    # The training runs as a launcher job, which logs its submission first; the error line follows.
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and error_lines and "missing_train.json" in err
    assert not out.exists()
