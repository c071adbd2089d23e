"""The smoke ViTPose learns: trained on the synthetic train split it reaches COCO AP ≥ 0.50 on the
synthetic val split with detected boxes, while the same model untrained scores < 0.05.

SMOKE_TRAINING is the configuration proposed for params.yaml's smoke scale (same engine, same
evaluation protocol as the paper: detected boxes, flip test, OKS-NMS, rescoring).
"""
from __future__ import annotations

import json
import time

import pytest
import torch

from engine_support import data_section
from vitpose.config import RunConfig
from vitpose.data.synthetic import generate_synthetic_coco
from vitpose.engine.inference import evaluate, load_model
from vitpose.engine.trainer import train

# The synthetic data as the data stage makes it: the generator's defaults except these counts.
SMOKE_DATA = {"seed": 0, "num_train": 400, "num_val": 100}
SMOKE_TRAINING = {
    "model": {"arch": "vit", "embed_dim": 64, "depth": 8, "num_heads": 4, "decoder_channels": 32,
              "input_size": [128, 96], "drop_path_rate": 0.0},
    "train": {"epochs": 40, "batch_size": 32, "lr": 2e-3, "warmup_iters": 50,
              "layer_decay": 0.75, "weight_decay": 0.1, "log_every_iters": 25},
    "eval": {"batch_size": 32},
    "num_workers": 1,
}


@pytest.mark.slow
def test_smoke_vitpose_reaches_ap_050_on_synthetic_val(tmp_path):
    data = tmp_path / "coco"
    generate_synthetic_coco(data, **SMOKE_DATA, progress=False)
    cfg = RunConfig.from_dict({
        "run": "smoke-ap", "scale": "smoke", "seed": 0,
        "model": SMOKE_TRAINING["model"], "train": SMOKE_TRAINING["train"], "eval": SMOKE_TRAINING["eval"],
        "data": data_section(data, num_workers=SMOKE_TRAINING["num_workers"]),
    })

    torch.manual_seed(cfg.seed)  # the initialisation train() starts from
    untrained = evaluate(cfg, None, tmp_path / "untrained", progress=False, model=load_model(cfg, None))

    t0 = time.time()
    summary = train(cfg, tmp_path / "work", tmp_path / "model.pth", progress=False)
    train_s = time.time() - t0
    trained = evaluate(cfg, tmp_path / "model.pth", tmp_path / "eval", progress=False)

    record = {"train_s": round(train_s, 1), "iterations": summary["iterations"],
              "final_loss": summary["final_loss"], "AP_trained": round(trained["AP"], 4),
              "AP_untrained": round(untrained["AP"], 4), "AR_trained": round(trained["AR"], 4)}
    print("smoke AP test:", json.dumps(record))
    assert untrained["AP"] < 0.05, record
    assert trained["AP"] >= 0.50, record
