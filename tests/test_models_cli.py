"""CLIs: stages.model_info, stages.benchmark, benchmarks/throughput.py (tiny models, CPU, few iterations)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stages import benchmark as benchmark_stage
from stages import model_info as model_info_stage
from stages._cli import run_main as run_cli
from vitpose.models import ModelConfig
from vitpose.models.benchmark import benchmark
from vitpose.models.info import model_info

ROOT = Path(__file__).resolve().parents[1]
TINY_FLAGS = ["--model", "vit", "--embed-dim", "32", "--depth", "2", "--heads", "2", "--decoder-channels", "8"]
INFO_KEYS = {"params_M", "backbone_params_M", "trainable_params_M", "gflops", "head_gflops",
             "trainable_gflops", "input", "heatmap"}


def run_main(main, argv, capsys) -> tuple[int, str, str]:
    code = run_cli(main, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_model_info_subprocess_prints_one_json_object():
    proc = subprocess.run(
        [sys.executable, "-m", "stages.model_info", "--model", "vitpose-b", "--decoder", "classic",
         "--input", "256x192", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert INFO_KEYS <= set(info)
    assert info["heatmap"] == [64, 48] and info["input"] == [256, 192]
    assert abs(info["gflops"] - 17.1) / 17.1 < 0.03 and abs(info["backbone_params_M"] - 86) / 86 < 0.01


def test_model_info_variant_flags_match_the_library(capsys):
    argv = TINY_FLAGS + ["--input", "128x96", "--ratio", "2", "--attention", "window", "--window", "4x4",
                         "--shift", "--pool", "--freeze", "ffn", "--json"]
    code, out, _ = run_main(model_info_stage.main, argv, capsys)
    assert code == 0
    info = json.loads(out)
    cfg = ModelConfig(arch="vit", embed_dim=32, depth=2, num_heads=2, decoder_channels=8, input_size=(128, 96),
                      ratio=2, attention="window", window_size=(4, 4), shift=True, pool=True, freeze="ffn")
    assert info == json.loads(json.dumps(model_info(cfg)))
    assert info["config"]["window_size"] == [4, 4] and info["config"]["freeze"] == "ffn"
    assert info["trainable_gflops"] < info["gflops"] and info["trainable_params_M"] < info["params_M"]
    assert info["feature"] == [16, 12] and info["heatmap"] == [32, 24]


@pytest.mark.parametrize("model", ["resnet50", "resnet152", "vitpose-s", "vitpose-h"])
def test_model_info_models(model, capsys):
    code, out, _ = run_main(model_info_stage.main, ["--model", model, "--decoder", "simple", "--json"], capsys)
    assert code == 0 and json.loads(out)["heatmap"] == [64, 48]


def test_model_info_human_readable(capsys):
    code, out, _ = run_main(model_info_stage.main, TINY_FLAGS + ["--attention", "vitdet"], capsys)
    assert code == 0 and "gflops" in out and "trainable_gflops" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--input", "250x192"], "error: input_size: expected H and W divisible by the feature stride 16"),
        (["--window", "8by8"], "error: window_size: expected HxW"),
        (["--model", "vit", "--embed-dim", "32"], "error: depth: required when arch is 'vit'"),
        (["--shift"], "error: shift: needs attention 'window' or 'vitdet'"),
        (["--model", "resnet50", "--freeze", "mhsa"], "error: freeze: not available for the ResNet backbone"),
    ],
)
def test_model_info_errors_exit_2(argv, needle, capsys):
    code, out, err = run_main(model_info_stage.main, argv, capsys)
    assert code == 2 and needle in err and out == ""


def test_benchmark_inference_json_and_out_file(tmp_path, capsys):
    out_file = tmp_path / "sub" / "bench.json"
    argv = TINY_FLAGS + ["--input", "64x48", "--batch", "2", "--iters", "2", "--warmup", "1", "--device", "cpu",
                         "--json", "--out", str(out_file)]
    code, out, _ = run_main(benchmark_stage.main, argv, capsys)
    assert code == 0
    record = json.loads(out)
    assert record == json.loads(out_file.read_text())
    assert record["batch"] == 2 and record["iters"] == 2 and record["input"] == [64, 48]
    assert record["precision"] == "fp32" and record["device"].startswith("CPU") and record["device_type"] == "cpu"
    inference = record["inference"]
    assert inference["images_per_s"] > 0 and record["train"] is None
    assert inference["peak_memory_MB"] is None or inference["peak_memory_MB"] > 0
    assert inference["memory_note"] and "RSS" in record["memory_measure"]
    # the metrics.json entries (docs/DEVELOPING.md)
    assert record["throughput"] == {"images_per_s": inference["images_per_s"], "device": record["device"],
                                    "batch": 2, "precision": "fp32"}
    assert record["train_memory_MB"] is None


def test_benchmark_train_step_with_variants(capsys):
    argv = TINY_FLAGS + ["--input", "64x48", "--ratio", "2", "--attention", "window", "--window", "4x4",
                         "--shift", "--pool", "--freeze", "mhsa", "--batch", "2", "--iters", "1",
                         "--warmup", "0", "--train", "--device", "cpu", "--json"]
    code, out, _ = run_main(benchmark_stage.main, argv, capsys)
    assert code == 0
    record = json.loads(out)
    assert record["config"]["freeze"] == "mhsa"
    assert record["train"]["images_per_s"] > 0 and record["inference"]["images_per_s"] > 0
    assert record["train_memory_MB"] == record["train"]["peak_memory_MB"]


def test_benchmark_library_function_and_train_step_updates_weights(monkeypatch):
    """The training step really trains: AdamW moves the trainable weights, not the frozen ones."""
    import vitpose.models.benchmark as bm

    built = {}
    real_build = bm.build_model

    def spy(cfg):
        built["model"] = real_build(cfg)
        built["before"] = {n: p.detach().clone() for n, p in built["model"].named_parameters()}
        return built["model"]

    monkeypatch.setattr(bm, "build_model", spy)
    cfg = ModelConfig(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), freeze="mhsa",
                      decoder_channels=8)
    record = benchmark(cfg, batch=2, iters=1, train=True, device="cpu", warmup=0, progress=False)
    assert record["train"] is not None
    model, before = built["model"], built["before"]  # the last model built is the training phase's
    for name, p in model.named_parameters():
        changed = not torch.equal(p.detach(), before[name])
        assert changed == p.requires_grad, name


def test_benchmark_errors_exit_2(capsys):
    code, _, err = run_main(benchmark_stage.main, TINY_FLAGS + ["--input", "64x47"], capsys)
    assert code == 2 and "error: input_size" in err
    code, _, err = run_main(benchmark_stage.main, TINY_FLAGS + ["--device", "cuda"], capsys)
    if not torch.cuda.is_available():
        assert code == 2 and "no CUDA device" in err


def test_throughput_script_prints_a_line_per_model():
    proc = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", "--models", "vitpose-b", "--depth", "1",
         "--batch", "1", "--iters", "1", "--warmup", "0", "--input", "64x48", "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("vitpose-b") and "batch=1" in line and "precision=fp32" in line and "device=CPU" in line
    assert "inference: images/s=" in line and "peak_memory=" in line and "train:" not in line


def test_bf16_autocast_path_with_windowed_attention():
    """The GPU path's dtype handling (bf16 autocast, pooled means, masks), exercised on CPU."""
    cfg = ModelConfig(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(128, 96), ratio=2,
                      attention="window", window_size=(5, 5), shift=True, pool=True, decoder_channels=8)
    for train in (False, True):
        record = benchmark(cfg, batch=2, iters=1, warmup=0, train=train, device="cpu", precision="bf16",
                           progress=False)
        assert record["precision"] == "bf16" and record["inference"]["images_per_s"] > 0
        assert (record["train"] is not None) == train


def test_benchmark_rejects_a_bad_device(capsys):
    code, _, err = run_main(benchmark_stage.main, TINY_FLAGS + ["--device", "tpu9"], capsys)
    assert code == 2 and "error: --device: expected cpu, cuda or cuda:N" in err


def test_benchmark_record_unpickles_without_torch():
    """The launching process unpickles the job's record and never imports torch for it (a TorchVersion
    in the record cost every benchmark job ~3 s of torch import in its waiting process)."""
    import pickle

    cfg = ModelConfig(arch="vit", embed_dim=32, depth=2, num_heads=2, input_size=(64, 48), decoder_channels=8)
    record = benchmark(cfg, batch=2, iters=1, train=False, device="cpu", warmup=0, progress=False)
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read()); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(record), capture_output=True,
                          check=True)
    assert proc.stdout.strip() == b"False", proc.stderr
