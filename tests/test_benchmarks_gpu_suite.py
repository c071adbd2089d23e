"""benchmarks/gpu_suite.py --tiny: the GPU suite's every section runs end to end on the CPU (issue 17).

The suite is the one command a lent GPU machine runs; this keeps it from rotting between those runs.
Its figures under --tiny mean nothing; what is checked is that every section ran and that the
post-processing section found the fast path identical to the reference.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_suite_runs_end_to_end_under_tiny(tmp_path):
    out = tmp_path / "suite.json"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--tiny", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = json.loads(out.read_text())["records"]
    sections = {r["section"] for r in records}
    assert sections == {"inference", "train", "loader", "postprocess"}
    inference = [r for r in records if r["section"] == "inference"]
    assert {(r["model"].split("(")[0], r["precision"]) for r in inference} == {
        (m, p) for m in ("vitpose-b", "vitpose-l", "vitpose-h") for p in ("fp32", "bf16")}
    assert all("HF" in r for r in inference if r["model"].startswith("vitpose-b"))   # transformers compared
    train = [r for r in records if r["section"] == "train"]
    assert len(train) == 4 and all(r["images_per_s"] > 0 for r in train)
    assert next(r for r in records if r["section"] == "postprocess")["status"] == 0
    for line in ("== 1. inference", "== 2. training step", "== 3. DataLoader", "== 4. evaluation post-processing",
                 "== summary"):
        assert line in proc.stdout
