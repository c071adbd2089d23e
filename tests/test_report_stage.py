"""`python -m stages.tables`: metrics-only input, seconds, atomic output, exit 2 on bad metrics files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

import stages.tables as stage
from vitpose.report import build
from vitpose.report.pareto import read_png_data

REPO = Path(__file__).resolve().parents[1]
EXPECTED = ({f"table{n}.{ext}" for n in range(1, 11) for ext in ("tex", "md")}
            | {"figure1_pareto.pdf", "figure1_pareto.png", "tables.tex", "index.md"})


def doc(run: str, serves: list[tuple[int, str]], ap: float = 0.61) -> dict:
    return {"schema": "vitpose-metrics/1", "run": run, "scale": "smoke", "synthetic": True,
            "serves": [{"table": t, "row": r} for t, r in serves], "config": {"lr": 1e-3},
            "config_hash": "f" * 64, "git_commit": "0123abc", "dataset": "coco", "split": "val",
            "boxes": "gt", "metrics": {"AP": ap, "AP50": 0.8, "AR": 0.66, "AR50": 0.9},
            "params_M": 0.31, "backbone_params_M": 0.27, "gflops": 0.05, "trainable_gflops": 0.05,
            "train_memory_MB": 300.0, "wall_time_s": 3.0,
            "throughput": {"images_per_s": 88.0, "device": "cpu", "batch": 8, "precision": "fp32"}}


def results_dir(root: Path) -> Path:
    """A results tree holding nothing but metrics.json files (no data, no checkpoints)."""
    runs = {"vitpose-b-classic-256x192": [(2, "vitpose-b/classic"), (4, "256x192"), (6, "none"), (9, "vitpose-b")],
            "vitpose-b-classic-224x224": [(4, "224x224")],
            "vitpose-b-classic-256x192-r2-window8x8": [(5, "window")]}
    for run, serves in runs.items():
        path = root / "results" / "smoke" / run / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(doc(run, serves)))
    return root / "results"


@pytest.fixture
def no_registry():
    """The plan comes from the repository's params.yaml (the registry); no run of it is trained here."""


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_regenerates_everything_from_metrics_only_in_seconds(tmp_path, no_registry):
    results = results_dir(tmp_path)
    out = tmp_path / "paper_tables"
    start = time.perf_counter()
    assert stage.main(["--scale", "smoke", "--results", str(results), "--out", str(out), "--quiet"]) == 0
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"report took {elapsed:.1f} s"
    produced = {p.name for p in (out / "smoke").iterdir()}
    assert EXPECTED <= produced
    assert ("tables.pdf" in produced) == (shutil.which("pdflatex") is not None)
    assert [p.name for p in out.iterdir()] == ["smoke"]  # no temporary directory left behind
    index = (out / "smoke" / "index.md").read_text()
    assert "SMOKE SCALE" in index and "- Scale: `smoke`" in index and "- Generated: " in index
    assert "workflow.registry.table_plan('params.yaml', 'smoke')" in index
    for name in sorted(EXPECTED - {"index.md", "tables.tex"}):
        assert f"]({name})" in index, name
    for n in range(1, 11):  # every table and the figure say the numbers are synthetic
        assert "SMOKE SCALE: synthetic data, not a reproduction" in (out / "smoke" / f"table{n}.md").read_text()
        assert "SMOKE SCALE: synthetic data, not a reproduction" in (out / "smoke" / f"table{n}.tex").read_text()
    assert read_png_data(out / "smoke" / "figure1_pareto.png")["synthetic"] is True
    t4 = (out / "smoke" / "table4.md").read_text()
    assert "| 224x224 | 61.0 | 74.9 |" in t4 and "| 256x256 | — | 75.8 |" in t4  # no Δ at smoke


def test_registry_plan_and_hyperparameters_are_used(tmp_path, monkeypatch):
    calls = []

    def table_plan():
        return [{"table": 9, "row": "vitpose-b", "run": "vitpose-b-classic-256x192", "unavailable": None},
                {"table": 9, "row": "vitpose-b*", "run": "multi", "unavailable": "needs multi_dataset"}]

    def hyperparameters():
        return {"vitpose-b": {"batch_size": 16, "lr": 1e-3, "weight_decay": 0.1, "layer_decay": 0.75,
                              "drop_path_rate": 0.3, "multi_dataset_batch_size": 1024, "multi_dataset_lr": 1e-3}}

    fake = types.SimpleNamespace(table_plan=table_plan, hyperparameters=hyperparameters,
                                 scale_cfg={"synthetic": True})

    def load_registry(params, scale):
        calls.append((str(params), scale))
        return fake

    import workflow.registry

    monkeypatch.setattr(workflow.registry, "load_registry", load_registry)
    results = results_dir(tmp_path)
    out = tmp_path / "pt"
    stage.main(["--scale", "smoke", "--results", str(results), "--out", str(out), "--params", "p.yaml",
                "--no-pdf", "--quiet"])
    assert calls == [("p.yaml", "smoke")]
    index = (out / "smoke" / "index.md").read_text()
    assert "workflow.registry.table_plan('p.yaml', 'smoke')" in index
    assert "Table 9 `vitpose-b*`: run multi cannot be produced: needs multi\\_dataset" in index
    assert "Table 4 `224x224`: no run is planned" in index   # the plan, not the metrics' serves, decides
    assert "`vitpose-b-classic-224x224`" in index.split("no table row uses:")[1]
    assert "| ViTPose-B | 16 | 512 | differs |" in (out / "smoke" / "table1.md").read_text()
    assert not (out / "smoke" / "tables.pdf").exists()   # --no-pdf


def test_with_the_real_registry(tmp_path):
    from workflow import registry

    params = REPO / "params.yaml"
    plan = registry.table_plan(str(params), "smoke")
    base = next(e for e in plan if e["table"] == 9 and e["row"] == "vitpose-b")
    path = tmp_path / "results" / "smoke" / base["run"] / "metrics.json"
    path.parent.mkdir(parents=True)
    serves = [(e["table"], e["row"]) for e in plan if e["run"] == base["run"]]
    path.write_text(json.dumps(doc(base["run"], serves)))
    out = tmp_path / "pt"
    assert stage.main(["--scale", "smoke", "--results", str(tmp_path / "results"), "--out", str(out),
                       "--params", str(params), "--no-pdf", "--quiet"]) == 0
    t9 = (out / "smoke" / "table9.md").read_text()
    # ours, released (no released checkpoint evaluated: a dash), paper
    assert "| ViTPose-B | ViT-B | 256x192 | 1/16 | 0.27 | — | 86 |" in t9
    assert "evaluates the released checkpoint data/smoke/weights/vitpose/vitpose-b.pth" in t9
    # Once the released run has a metrics.json, its values sit between ours and the paper's.
    released = next(e for e in plan if e["table"] == 9 and e["row"] == "vitpose-b" and e.get("released"))
    path = tmp_path / "results" / "smoke" / released["run"] / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**doc(released["run"], serves, ap=0.757), "throughput": None,
                                "notes": ["the authors' released checkpoint x.pth (sha256 0123456789ab)"]}))
    assert stage.main(["--scale", "smoke", "--results", str(tmp_path / "results"), "--out", str(out),
                       "--params", str(params), "--no-pdf", "--quiet", "--tables", "9"]) == 0
    t9 = (out / "smoke" / "table9.md").read_text()
    assert "| 0.27 | 0.27 | 86 | 88 | — | 944 | 61.0 | 75.7 | 75.8 |" in t9
    assert "Released row vitpose-b: the authors' released checkpoint x.pth" in t9


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "stages.tables", "--quiet", "--no-pdf", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("corruption,expected", [
    ("{not json", "not valid JSON"),
    ("schema", "key 'metrics.AP': expected a fraction in [0, 1]"),
])
def test_bad_metrics_exit_2_naming_the_file_and_leave_the_report_untouched(tmp_path, corruption, expected):
    results = results_dir(tmp_path)
    out = tmp_path / "paper_tables"
    (out / "smoke").mkdir(parents=True)
    (out / "smoke" / "index.md").write_text("the previous report\n")
    before = snapshot(out)
    bad = results / "smoke" / "vitpose-b-classic-224x224" / "metrics.json"
    if corruption == "schema":
        d = json.loads(bad.read_text())
        d["metrics"]["AP"] = 61.0
        bad.write_text(json.dumps(d))
    else:
        bad.write_text(corruption)
    done = _run_cli("--scale", "smoke", "--results", str(results), "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and str(bad) in done.stderr and expected in done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(out) == before


def test_a_failure_while_writing_leaves_the_previous_report(tmp_path, no_registry, monkeypatch):
    results = results_dir(tmp_path)
    out = tmp_path / "paper_tables"
    args = ["--scale", "smoke", "--results", str(results), "--out", str(out), "--no-pdf", "--quiet"]
    stage.main(args)
    before = snapshot(out)

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(build.pareto, "save_figure", broken)
    with pytest.raises(OSError, match="disk full"):
        stage.main(args)
    assert snapshot(out) == before
    assert [p.name for p in out.iterdir()] == ["smoke"]


def test_rerun_replaces_the_report_whole(tmp_path, no_registry):
    results = results_dir(tmp_path)
    out = tmp_path / "paper_tables"
    args = ["--scale", "smoke", "--results", str(results), "--out", str(out), "--no-pdf", "--quiet"]
    stage.main(args)
    (out / "smoke" / "stale.md").write_text("from an older report")
    stage.main(args)
    assert not (out / "smoke" / "stale.md").exists()
    assert sorted(p.name for p in out.iterdir()) == ["smoke"]


def test_missing_results_dir_gives_an_all_dash_report_and_a_warning(tmp_path, no_registry, capsys):
    out = tmp_path / "pt"
    stage.main(["--scale", "smoke", "--results", str(tmp_path / "none"), "--out", str(out), "--no-pdf",
                "--quiet"])
    assert "warning: no metrics.json under" in capsys.readouterr().err
    assert "No metrics.json was found for this scale" in (out / "smoke" / "index.md").read_text()


def test_cli_usage_errors_exit_2():
    done = _run_cli()
    assert done.returncode == 2 and "--scale" in done.stderr


def test_partial_outputs_leave_other_files_alone(tmp_path):
    """`--tables N` / `--figure1` (what `snakemake tableN` runs) write only those files."""
    import subprocess
    import sys

    from workflow.registry import REPO

    out = tmp_path / "paper_tables"
    (out / "smoke").mkdir(parents=True)
    keep = out / "smoke" / "table2.md"
    keep.write_text("from an earlier run\n")
    proc = subprocess.run([sys.executable, "-m", "stages.tables", "--scale", "smoke", "--results",
                           str(tmp_path / "results"), "--out", str(out), "--tables", "5", "--figure1",
                           "--quiet"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (out / "smoke").iterdir())
    assert names == ["figure1_pareto.csv", "figure1_pareto.pdf", "figure1_pareto.png", "table2.md",
                     "table5.md", "table5.tex"]
    assert keep.read_text() == "from an earlier run\n"
    csv = (out / "smoke" / "figure1_pareto.csv").read_text().splitlines()
    assert csv[0] == "source,label,images_per_s,AP,params_M"
    assert any(line.startswith('paper,"ViTPose-B"') for line in csv)
