"""`torchrun --nproc_per_node 2` (gloo, CPU): a tiny training completes and only rank 0 writes files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine_support import make_synthetic, tiny_config
from vitpose.engine import distributed as D

REPO = Path(__file__).resolve().parents[1]

# Run by every rank: records each file the training opens for writing (open or os.open), saves,
# renames into place or creates a directory for, then reports them (with the training summary)
# through an unrecorded write.
RANK_SCRIPT = textwrap.dedent(
    """
    import builtins, io, json, os, sys
    import torch

    report_dir, config_file, work, out = sys.argv[1:5]
    written = []
    _open, _replace, _mkdir, _save = builtins.open, os.replace, os.mkdir, torch.save
    _os_open = os.open

    def rec_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            written.append(str(file))
        return _open(file, mode, *a, **k)

    def rec_os_open(file, flags, *a, **k):  # appends to the log, temporary files of atomic writes
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
            written.append(str(file))
        return _os_open(file, flags, *a, **k)

    def rec_replace(src, dst, *a, **k):
        written.append(str(dst))
        return _replace(src, dst, *a, **k)

    def rec_mkdir(path, *a, **k):
        written.append(str(path))
        return _mkdir(path, *a, **k)

    def rec_save(obj, f, *a, **k):
        written.append(str(getattr(f, "name", f)))  # a path, or a file object opened for it
        return _save(obj, f, *a, **k)

    builtins.open = io.open = rec_open
    os.replace, os.mkdir, torch.save, os.open = rec_replace, rec_mkdir, rec_save, rec_os_open

    from vitpose.config import load_run_config_file
    from vitpose.engine.distributed import cleanup, get_rank
    from vitpose.engine.trainer import train

    summary = train(load_run_config_file(config_file), work, out, progress=False)
    rank = get_rank()
    cleanup()
    builtins.open = io.open = _open
    os.open = _os_open
    with _open(os.path.join(report_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "env_rank": os.environ["RANK"], "written": written,
                   "summary": summary}, f)
    """
)


def test_torchrun_two_cpu_processes_only_rank0_writes(tmp_path):
    data = make_synthetic(tmp_path / "coco", num_train=8, num_val=2)
    config = tmp_path / "run.json"
    config.write_text(json.dumps(tiny_config(data, train={"epochs": 2, "batch_size": 4})))
    script = tmp_path / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    reports = tmp_path / "reports"
    reports.mkdir()
    work, out = tmp_path / "work", tmp_path / "out" / "model.pth"

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(reports), str(config), str(work), str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    r0 = json.loads((reports / "rank0.json").read_text())
    r1 = json.loads((reports / "rank1.json").read_text())
    assert (r0["env_rank"], r1["env_rank"]) == ("0", "1")
    for r in (r0, r1):
        s = r["summary"]
        assert s["world_size"] == 2 and not s["interrupted"]
        assert s["iterations"] == s["total_iters"] == 2 * s["iters_per_epoch"] > 0
    # Global batch 4 = 2 per rank: an epoch has (instances // 4) iterations, not instances // 2.
    n_train = sum(1 for a in json.loads((data / "annotations/person_keypoints_train2017.json").read_text())
                  ["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"])
    assert r0["summary"]["iters_per_epoch"] == n_train // 4

    # torch itself may create cache folders elsewhere (/tmp/torchinductor_*); the run's files are here.
    mine = [str(p) for p in r1["written"] if Path(p).resolve().is_relative_to(tmp_path.resolve())]
    assert mine == [], mine
    written0 = {Path(p).name for p in r0["written"]}
    assert {"last.pth", "train_log.jsonl", "model.pth"} <= written0
    assert out.is_file() and (work / "last.pth").is_file()
    log = [json.loads(line) for line in (work / "train_log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log] == list(range(1, r0["summary"]["iterations"] + 1))


def test_single_process_env_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = D.init_from_env()
    assert (info.rank, info.world_size, info.is_main) == (0, 1, True)
    assert D.is_main_process() and D.get_world_size() == 1
    D.barrier()  # a no-op without a process group


def test_distributed_env_needs_master_address(monkeypatch):
    from vitpose.utils.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        D.init_from_env()
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ConfigError, match="RANK: expected 0..1, got 5"):
        D.init_from_env()
