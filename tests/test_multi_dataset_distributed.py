"""Multi-dataset training under DDP (`torchrun`, 2 CPU processes, gloo): a process whose batch holds
no sample of some dataset leaves that decoder out of its backward pass; DDP must still step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine_support import make_synthetic, make_synthetic_other, other_data_section, tiny_config, weights
from vitpose.config import RunConfig
from vitpose.data.sampler import RatioSampler
from vitpose.engine.multi_dataset import build_multi_train_dataset

REPO = Path(__file__).resolve().parents[1]

RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from vitpose.config import load_run_config_file
    from vitpose.engine.distributed import cleanup, get_rank
    from vitpose.engine.trainer import train

    report_dir, config_file, work, out = sys.argv[1:5]
    summary = train(load_run_config_file(config_file), work, out, progress=False)
    rank = get_rank()
    cleanup()
    with open(os.path.join(report_dir, f"rank{rank}.json"), "w") as f:
        json.dump(summary, f)
    """
)


@pytest.mark.slow
def test_torchrun_multi_dataset_run_with_decoders_missing_from_a_ranks_batch(tmp_path):
    raw = tiny_config(make_synthetic(tmp_path / "coco", num_train=4, num_val=1),
                      train={"epochs": 2, "batch_size": 4})
    raw["data"]["ratio"] = 1.0
    raw["extra_data"] = [other_data_section("aic", make_synthetic_other("aic", tmp_path / "aic", 3, 1),
                                            ratio=1.0)]
    cfg = RunConfig.from_dict(raw)
    # Precondition, from the sampler itself: some rank's batch (2 rows) has a single dataset, i.e.
    # one decoder is unused there while the other rank may use it.
    sizes = [len(d) for d in build_multi_train_dataset(cfg).datasets]
    one_dataset_batches = 0
    for epoch in range(2):
        for rank in (0, 1):
            sampler = RatioSampler(sizes, [1.0, 1.0], num_replicas=2, rank=rank, seed=cfg.seed, drop_last=True)
            sampler.set_epoch(epoch)
            rows = [int(i >= sizes[0]) for i in sampler]
            one_dataset_batches += sum(len(set(rows[j:j + 2])) == 1 for j in range(0, len(rows) - 1, 2))
    assert one_dataset_batches > 0

    config = tmp_path / "run.json"
    config.write_text(json.dumps(cfg.to_dict()))
    script = tmp_path / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    reports = tmp_path / "reports"
    reports.mkdir()
    out = tmp_path / "out" / "model.pth"
    # PYTHONPATH: the ranks import this checkout's vitpose, whatever the environment has installed
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(reports), str(config), str(tmp_path / "work"), str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        summary = json.loads((reports / f"rank{rank}.json").read_text())
        assert summary["world_size"] == 2 and summary["iterations"] == summary["total_iters"] > 0
    multi = weights(out.parent / "model_multi.pth")
    torch.manual_seed(cfg.seed)
    from vitpose.engine.multi_dataset import build_multi_model_for_training

    init = build_multi_model_for_training(cfg).state_dict()
    for prefix in ("keypoint_head.final_layer.weight", "associate_keypoint_heads.0.final_layer.weight"):
        assert not torch.equal(multi[prefix], init[prefix]), prefix  # both decoders trained
