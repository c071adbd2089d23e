"""A real training process SIGKILLed at a random iteration, then rerun: the final weights are
bit-identical to an uninterrupted run's and at most `checkpoint_every_iters` iterations are repeated.

Nothing cooperates with the kill: it can land inside a step, inside the append of a log line (a torn
last line) or inside the write of `last.pth` (a temporary file left, the previous state intact).
The random iteration is printed (and the seed can be fixed with VITPOSE_KILL_SEED) so a failure can
be replayed.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from engine_support import assert_same_weights, log_rows, make_synthetic, temp_files, tiny_config, weights
from vitpose.engine.trainlog import read_train_log

REPO = Path(__file__).resolve().parents[1]
EVERY = 3  # checkpoint_every_iters

# The training command: `pace` sleeps in the should_stop poll (after every iteration) so that the
# parent's kill lands mid-run; it never stops the run and does not touch the numerics.
SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from vitpose.config import RunConfig
    from vitpose.engine.trainer import train

    config, work, out, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    def pace():
        time.sleep(delay)
        return False

    with open(config) as f:
        cfg = RunConfig.from_dict(json.load(f))
    summary = train(cfg, work, out, progress=False, should_stop=pace)
    print("SUMMARY " + json.dumps(summary))
    """
)


def _start(script: Path, config: Path, work: Path, out: Path, delay: float) -> subprocess.Popen:
    # One thread each: the reference and the victim run side by side on a 2-core machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.Popen([sys.executable, str(script), str(config), str(work), str(out), str(delay)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> dict:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    line = next(ln for ln in stdout.splitlines() if ln.startswith("SUMMARY "))
    return json.loads(line[len("SUMMARY "):])


def test_sigkill_at_a_random_iteration_then_rerun_is_bit_identical(tmp_path):
    data = make_synthetic(tmp_path / "coco", num_train=12, num_val=2)  # 16 instances: 4 it / epoch
    config = tmp_path / "run.json"
    config.write_text(json.dumps(tiny_config(data, train={"epochs": 5, "log_every_iters": 1,
                                                          "checkpoint_every_iters": EVERY})))
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    total, ipe = 20, 4
    seed = int(os.environ.get("VITPOSE_KILL_SEED", time.time_ns() % 2**31))
    target = random.Random(seed).randint(EVERY + 1, total - 2)
    why = f"(VITPOSE_KILL_SEED={seed}: kill once iteration {target} is logged)"
    print(why)

    ref = _start(script, config, tmp_path / "ref", tmp_path / "ref.pth", 0.0)
    victim_log = tmp_path / "run" / "train_log.jsonl"
    victim = _start(script, config, tmp_path / "run", tmp_path / "run.pth", 0.05)
    deadline = time.monotonic() + 120
    while len(read_train_log(victim_log)) < target:
        assert victim.poll() is None, f"the run ended before the kill {why}: {victim.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"no progress to iteration {target} {why}"
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "run.pth").exists()

    logged = len(read_train_log(victim_log))  # iterations done when the kill landed (or one fewer)
    saved = torch.load(tmp_path / "run" / "last.pth", map_location="cpu", weights_only=True)["iteration"]
    assert saved % EVERY == 0 or saved % ipe == 0, (saved, why)
    assert 0 < saved <= logged and logged - saved <= EVERY, (saved, logged, why)

    reference = _finish(ref)
    assert reference["iterations"] == total and reference["iters_per_epoch"] == ipe
    resumed = _finish(_start(script, config, tmp_path / "run", tmp_path / "run.pth", 0.0))
    assert resumed["resumed_from"] == saved and resumed["iterations"] == total and not resumed["interrupted"]
    assert logged - resumed["resumed_from"] <= EVERY, why  # repeated at most N iterations

    assert_same_weights(weights(tmp_path / "ref.pth"), weights(tmp_path / "run.pth"))
    assert log_rows(tmp_path / "run") == log_rows(tmp_path / "ref"), why
    assert temp_files(tmp_path / "run") == []  # a write cut short by the kill is cleaned up
