"""End to end at smoke scale, the DAG built once: real Snakemake, then real DVC on its outputs.

Order matters (module-scoped project; each run is trained once in the whole module):
1. `snakemake all` builds every run, every table, Figure 1, the training curves and the report (of a
   copy whose tables keep KEEP_ROWS: every table and job kind, fewer rows, for CI's time budget);
2. every smoke row of Tables 2-9 learned: AP >= 30 on the synthetic val split (the learning floor);
3. a second call is a no-op; a table missing one producible row is out of date; a changed parameter
   re-runs only its runs (dry runs);
4. `snakemake table4 --config 'seeds=[0,1]'` trains only the second seed of Table 4's rows and the
   table shows mean ± std over n = 2;
5. `python -m workflow.dvcgen --record` records Snakemake's outputs in DVC: `dvc repro` re-runs nothing;
6. `dvc exp run -S` re-runs exactly the stage a changed parameter reaches (the report, for Table 1);
7. Table 10 (built by `all`): both test-dev submissions were written and the DAG stopped there (nobody can
   score a synthetic test-dev); a scores file placed where the manual upload step puts it is imported;
8. released checkpoints saved by the test (tiny models in the released format, one a multi-task file)
   are evaluated once in place, join `snakemake all`, and Tables 2 and 9 show them.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from vitpose.evaluation.testdev import check_submission
from vitpose.models import ModelConfig, build_model
from vitpose.models.checkpoint import save_vitpose_checkpoint
from vitpose.report.metrics import load_metrics
from workflow.registry import DATASET_FILES, Registry
from workflow.schema import load_params

from conftest import copy_project

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
LEARNING_FLOOR = 0.30  # COCO AP on the synthetic val split; an untrained model scores 0
LEARNING_TABLES = range(2, 10)
# Rows known to miss the floor, each with the floor it does reach (issue 15 stays open for them; they
# must still not regress). Measured 2026-12-06 (smoke layer_decay 1.0, 2-head stand-ins, fused AdamW):
# - Table 6's FFN-frozen row freezes the FFNs and the patch and position embeddings, which at smoke are
#   random (imagenet_init: none): AP 13.2 (MHSA-frozen 53.2, nothing frozen 52.8);
# - Table 2's simple decoder on the ViTPose-B stand-in: AP 10.0 (classic 52.8). A bilinear 4x
#   upsampling of a 48-wide 8x6 token grid plus one 3x3 convolution has to draw sigma-1 peaks a quarter
#   of a token wide; the paper credits the simple decoder's success to the large pre-trained ViT's
#   features, which a random-init 48-wide stand-in does not have.
BELOW_FLOOR = {(6, "ffn"): 0.10, (2, "vitpose-b/simple"): 0.05}


def run(cmd: list[str], cwd: Path, timeout: int = 5400) -> subprocess.CompletedProcess:
    # As after `source .venv/bin/activate` (README): DVC stage commands call `python`.
    env = dict(os.environ, PYTHONUNBUFFERED="1", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run([str(BIN / "snakemake"), *args], project)


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], project)


def registry(project: Path) -> Registry:
    return Registry(load_params(project / "params.yaml"), "smoke", project / "params.yaml")


# CI's share of the smoke DAG: every table, every job kind and each capability, with fewer rows of the
# tables whose rows differ only in a value (CI must stay within its time budget; `snakemake all` with
# every row takes about an hour on 2 cores, docs/DEVELOPING.md gives the measured times and APs).
# Table 9's ViTPose-L* and ViTPose-H* stay: they are Table 10's ensemble members.
KEEP_ROWS = {
    "table2": ["resnet50/classic", "vitpose-b/classic", "vitpose-b/simple", "vitpose-l/classic"],
    "table3": ["imagenet-1k", "coco+aic-crop"],
    "table4": ["224x224", "256x192"],
    "table5": ["full", "window"],
    "table7": ["coco", "coco+aic+mpii+crowdpose"],
    "table8": ["none", "heatmap+token"],
    "table9": ["vitpose-b", "vitpose-l", "vitpose-l*", "vitpose-h*"],
}


def ci_params(path: Path) -> None:
    """Keep KEEP_ROWS of those tables in the copy's params.yaml (the other tables whole)."""
    params = yaml.safe_load(path.read_text())
    for table, keep in KEEP_ROWS.items():
        rows = params["tables"][table]["rows"]
        assert set(keep) <= set(rows), (table, keep)
        params["tables"][table]["rows"] = {k: v for k, v in rows.items() if k in keep}
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    dest = copy_project(tmp_path_factory.mktemp("project"))
    ci_params(dest / "params.yaml")
    ok(run([sys.executable, "-m", "workflow.dvcgen"], dest))  # dvc.yaml of the trimmed params
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "ci rows"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    t0 = time.time()
    out = ok(snakemake(dest, "all"))
    (dest / "snakemake_all.log").write_text(out)
    print(f"\nsnakemake all (smoke): {time.time() - t0:.0f} s")
    return dest


def test_snakemake_all_builds_every_table_and_the_report(project):
    reg = registry(project)
    for r in reg.available_runs():
        if r.stage != "finetune":
            continue
        m = load_metrics(project / r.metrics)  # schema-validated
        assert m["run"] == r.id and m["scale"] == "smoke" and m["synthetic"] is True
        assert m["gflops"] > 0 and m["throughput"]["images_per_s"] > 0
        assert (project / r.file("curve")).is_file()
    out = project / "paper_tables" / "smoke"
    for n in range(1, 11):
        assert "synthetic" in (out / f"table{n}.tex").read_text().lower()
        header = next(line for line in (out / f"table{n}.md").read_text().splitlines() if line.startswith("| "))
        assert ("Δ" in header) == (n == 1), header  # differences only for Table 1's same/differs
    for name in ("index.md", "index.html", "figure1_pareto.png", "curves_table5.png", "val_ap.png"):
        assert (out / name).stat().st_size > 0, name
    # Table 5's variants all have numbers: GFLOPs differ between full and window attention.
    t5 = {r.id: load_metrics(project / r.metrics) for r in reg.table_runs(5)}
    assert len(t5) == len(KEEP_ROWS["table5"])
    assert t5["vitpose-b-classic-256x192-r2-window8x8"]["gflops"] < t5["vitpose-b-classic-256x192-r2-fp16"]["gflops"]
    # Table 3: each pose-data row finetuned from its own MAE pre-training, its measured image count shown
    table3 = (out / "table3.md").read_text()
    for r in reg.table_runs(3):
        record = load_metrics(project / r.metrics).get("pretraining")
        if r.upstream.get("pretrain"):
            assert record["run"] == r.upstream["pretrain"] and record["images"] > 0
            assert f"(ours: {record['images']:,})" in table3
    # Table 8: the knowledge token exists and the memory column is measured in every row
    assert (project / reg.get("token-vitpose-l-classic-256x192").file("token")).is_file()
    rows8 = [line.split("|") for line in (out / "table8.md").read_text().splitlines()
             if line.startswith("| ") and ("ViTPose-L" in line or line.startswith("| none "))]
    measured = [cells for cells in rows8 if cells[5].strip() not in ("", "—")]
    assert len(measured) == len(KEEP_ROWS["table8"]), rows8


def test_every_smoke_row_learned(project):
    """The learning floor: every reproducible row of Tables 2-9 reaches AP >= 30 on the synthetic val."""
    reg = registry(project)
    scores, low = {}, []
    for entry in reg.table_plan():
        if entry["table"] not in LEARNING_TABLES or entry["unavailable"] or entry.get("released"):
            continue  # (the authors' released checkpoints are evaluated only where a file is placed)
        ap = load_metrics(project / reg.get(entry["run"]).metrics)["metrics"]["AP"]
        scores[f"T{entry['table']} {entry['row']}"] = round(100 * ap, 1)
        if ap < BELOW_FLOOR.get((entry["table"], entry["row"]), LEARNING_FLOOR):
            low.append(f"T{entry['table']} {entry['row']} ({entry['run']}): AP {100 * ap:.1f}")
    print("\nsmoke AP per row:", json.dumps(scores))
    assert len(scores) >= 20 and not low, low
    # The tables show those numbers with the paper's one decimal.
    table5 = (project / "paper_tables/smoke/table5.md").read_text()
    assert re.search(r"^\| Window \|.*\| (\d\d\.\d) \| 66\.4 \|", table5, re.M), table5


def test_second_snakemake_is_a_fast_noop(project):
    t0 = time.time()
    out = ok(snakemake(project, "all"))
    assert time.time() - t0 < 30, "a second `snakemake all` must be a no-op in seconds"
    assert "Nothing to be done" in out


def test_a_table_with_a_producible_missing_row_is_out_of_date(project):
    """A table newer than its inputs but missing one run's metrics (as after `python -m stages.tables` by
    hand, or a run that produced some rows) is not "up to date": the run is produced, the table rebuilt."""
    reg = registry(project)
    victim = project / reg.table_runs(5)[0].metrics
    aside = victim.with_name("metrics.aside")
    victim.rename(aside)
    try:
        ok(run([sys.executable, "-m", "stages.tables", "--scale", "smoke", "--tables", "5"], project))
        out = ok(snakemake(project, "-n", "table5"))
    finally:
        aside.rename(victim)
        ok(run([sys.executable, "-m", "stages.tables", "--scale", "smoke", "--tables", "5"], project))
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts.get("evaluate") == "1" and counts.get("report_table5") == "1", out[-3000:]
    assert counts.get("finetune") is None  # the run's weights are there: only its metrics are redone


def test_changed_parameter_reruns_only_its_runs(project):
    params_file = project / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["hyperparameters"]["vitpose-l"]["weight_decay"] = 0.05
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        out = ok(snakemake(project, "-n", "all"))
    finally:
        params_file.write_text(original)
    # ViTPose-L's runs (classic decoder and the multi-dataset L*), then the students of the L teacher or
    # of its token: nothing else.
    finetuned = set(re.findall(r"finetune (\S+):", out))
    vit_l = {r.id for r in registry(project).available_runs()
             if r.stage == "finetune" and r.spec.get("model") == "vitpose-l"}
    assert vit_l <= finetuned and len(vit_l) == 2  # L (Tables 2, 9) and L* (Tables 9, 10)
    assert all(rid.startswith("vitpose-l-") or "-kd-" in rid for rid in finetuned), finetuned


def test_seed_repeats_give_mean_and_std(project):
    """Table 4 (its two CI rows, the cheapest table to repeat) with seeds [0, 1]."""
    out = ok(snakemake(project, "table4", "--config", "seeds=[0,1]"))
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts.get("finetune") == "2", out[-3000:]  # the second seed only: the first is there
    table4 = (project / "paper_tables/smoke/table4.md").read_text()
    rows = [line for line in table4.splitlines() if line.startswith("| ")][1:]  # below the header
    repeated = [line for line in rows if " ± " in line]
    assert len(repeated) == len(KEEP_ROWS["table4"]) and all("| 2/2 |" in line for line in repeated), table4
    ok(run([sys.executable, "-m", "stages.tables", "--scale", "smoke", "--tables", "4"], project))  # seeds [0] again


def test_dvc_records_snakemake_outputs_and_repro_reruns_nothing(project):
    # The documented way: `python -m workflow.dvcgen --record` = `dvc commit -f` of the produced stages.
    ok(run([sys.executable, "-m", "workflow.dvcgen", "--record"], project))
    status = ok(dvc(project, "status", "dvc.yaml"))
    assert "changed" not in status, status[-3000:]
    t0 = time.time()
    out = ok(dvc(project, "repro"))
    assert "Running stage" not in out, out[-3000:]
    # A sanity bound, not a speed goal: DVC checks ~160 stages in seconds, where re-running any would
    # take minutes; the assertion above is the real check.
    assert time.time() - t0 < 60
    shown = ok(dvc(project, "metrics", "show", "--json"))
    assert "vitpose-b-classic-256x192" in shown
    plots = ok(dvc(project, "plots", "show", "--json"))
    assert "train_curve.csv" in plots


def test_dvc_exp_run_reruns_exactly_the_changed_stage(project):
    """`dvc exp run -S`: Table 1 is generated from params.yaml, so the report re-runs and shows the value.

    ViTPose-H's multi-dataset batch size is overridden by the smoke scale's, so the H runs' config.json
    stays the same (their config stages re-run, nothing after them does)."""
    # Experiments start from a commit: record the reproduced state first, as a user would.
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    out = ok(dvc(project, "exp", "run", "-S", "hyperparameters.vitpose-h.multi_dataset.batch_size=2048"))
    assert "Running stage 'report'" in out
    assert "Running stage 'finetune-" not in out and "Running stage 'evaluate-" not in out
    row = next(line for line in (project / "paper_tables/smoke/table1.md").read_text().splitlines()
               if line.startswith("| ViTPose-H |"))
    assert "| 2048 | 1024 | differs |" in row, row


def test_table10_writes_both_submissions_and_stops_there(project):
    reg = registry(project)
    runs = reg.table_runs(10)
    assert [len(r.upstream) for r in runs] == [1, 3]
    testdev = project / "data/smoke/coco-testdev"
    for r in runs:
        record = json.loads((project / r.file("testdev_record")).read_text())
        assert record["images"] == 40 and record["results"] > 0 and len(record["members"]) == len(r.upstream)
        check_submission(project / r.file("testdev_zip"), testdev / DATASET_FILES["coco-testdev"]["image_info"])
        val = load_metrics(project / r.file("val_metrics"))
        assert val["split"] == "val" and val["metrics"]["AP"] is not None
        assert not (project / r.metrics).exists()  # only the server's scores make it
    ensemble = load_metrics(project / runs[1].file("val_metrics"))
    assert ensemble["notes"][0].startswith("ensemble of 3 models") and "72x56 grid" in ensemble["notes"][0]
    table = (project / "paper_tables/smoke/table10.md").read_text()
    assert table.count("COCO val AP of the submitted model(s), scored by this code") == 2
    assert "COCO test-dev is scored only by the COCO server" in table


def test_placed_server_scores_are_imported_and_shown(project):
    reg = registry(project)
    single, ensemble = reg.table_runs(10)
    (project / single.file("server_scores")).write_text(json.dumps(
        {"AP": 0.4, "AP50": 0.7, "AP75": 0.4, "APM": 0.3, "APL": 0.5, "AR": 0.45, "date": "2024-05-01"}))
    out = ok(snakemake(project, single.metrics))
    assert "testdev_scores" in out and "testdev_upload" not in out  # the placed file is taken as made
    doc = load_metrics(project / single.metrics)
    assert doc["split"] == "test-dev" and doc["notes"][0] == "scored by the COCO server on 2024-05-01"
    ok(run([sys.executable, "-m", "stages.tables", "--scale", "smoke", "--tables", "10"], project))
    row = next(line for line in (project / "paper_tables/smoke/table10.md").read_text().splitlines()
               if line.startswith("| ViTPose | "))
    assert row.split(" | ")[2:4] == ["40.0", "80.9"], row
    proc = snakemake(project, ensemble.metrics)  # nothing placed: the manual step says what to do
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "manual step for run" in out and "no server can score" in out


def test_released_checkpoints_are_evaluated_and_shown(project):
    reg = registry(project)
    released = [r for r in reg.runs.values() if r.stage == "released"]
    assert len(released) == 11 and sum(r.spec["datasets"] != ["coco"] for r in released) == 3
    dry = ok(snakemake(project, "-n", "all"))
    assert "evaluate_released" not in dry  # no file in place: not part of `all`
    for r in released:
        torch.manual_seed(0)
        model = build_model(ModelConfig.from_dict(reg.run_config(r.id)["model"]))
        path = project / reg.released_checkpoint(r)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_vitpose_checkpoint(model, path)
        if r.spec["datasets"] != ["coco"]:  # a multi-task file: another decoder beside COCO's
            obj = torch.load(path, weights_only=True)
            obj["state_dict"].update({f"associate_keypoint_heads.0.{k}": v
                                      for k, v in model.keypoint_head.state_dict().items()})
            torch.save(obj, path)
    dry = ok(snakemake(project, "-n", "all"))
    assert all(f"evaluate_released {r.id}:" in dry for r in released)  # in place: part of `all`
    ok(snakemake(project, "released"))
    for r in released:
        doc = load_metrics(project / r.metrics)
        assert doc["notes"][0].startswith("the authors' released checkpoint data/smoke/weights/vitpose/")
    ok(run([sys.executable, "-m", "stages.tables", "--scale", "smoke", "--tables", "2", "--tables", "9"], project))
    t2 = (project / "paper_tables/smoke/table2.md").read_text()
    assert "| AP ours | AP released | AP paper |" in t2
    row = next(line for line in t2.splitlines() if line.startswith("| ViTPose-B classic |"))
    assert row.split(" | ")[2] not in ("—", "")  # the released value, from the file the test saved
    t9 = (project / "paper_tables/smoke/table9.md").read_text()
    assert "Released row vitpose-l\\*: a multi-task file: its COCO decoder scored" in t9
