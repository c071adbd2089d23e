"""The supplementary multi-dataset table and the runs' own notes, from metrics.json only."""
from __future__ import annotations

import json
from pathlib import Path

import stages.tables as stage
from vitpose.report.metrics import validate_metrics
from vitpose.report.supplementary import supplementary_markdown

RUN = "vitpose-b-classic-256x192-coco+aic+mpii+crowdpose"


def doc(run: str, serves, per_dataset=None, notes=None) -> dict:
    d = {"schema": "vitpose-metrics/1", "run": run, "scale": "smoke", "synthetic": True,
         "serves": [{"table": t, "row": r} for t, r in serves],
         "metrics": {"AP": 0.5, "AP50": 0.8, "AR": 0.6, "AR50": 0.9}}
    if per_dataset:
        d["per_dataset"] = per_dataset
    if notes:
        d["notes"] = notes
    return d


def test_per_dataset_metrics_are_validated_like_metrics():
    good = doc(RUN, [(7, "coco+aic+mpii+crowdpose")], {"coco": {"AP": 0.5}, "mpii": {"PCKh": 0.9}})
    validate_metrics(good)
    bad = doc(RUN, [(7, "coco+aic+mpii+crowdpose")], {"mpii": {"PCKh": 90.0}})
    try:
        validate_metrics(bad, "m.json")
    except Exception as exc:  # MetricsError
        assert "per_dataset.mpii.PCKh" in str(exc) and "m.json" in str(exc)
    else:
        raise AssertionError("a PCKh of 90 (not a fraction) was accepted")


def test_supplementary_lists_each_dataset_of_each_multi_dataset_run():
    runs = [doc(RUN, [(7, "coco+aic+mpii+crowdpose")],
                {"coco": {"AP": 0.5}, "aic": {"AP": 0.25}, "mpii": {"PCKh": 0.875}, "crowdpose": {"AP": None}},
                ["trained on CrowdPose"]),
            doc("vitpose-b-classic-256x192", [(7, "coco")])]
    md = supplementary_markdown(runs, "smoke", True)
    row = next(line for line in md.splitlines() if line.startswith(f"| `{RUN}`"))
    assert row.endswith("| 50.0 | 25.0 | 87.5 | — |")
    assert "vitpose-b-classic-256x192`" not in md.replace(RUN, "")  # single-dataset runs are not listed
    assert "SMOKE SCALE" in md and "trained on CrowdPose" in md


def test_report_stage_writes_the_supplementary_and_the_runs_notes(tmp_path):
    results = tmp_path / "results" / "smoke" / RUN
    results.mkdir(parents=True)
    (results / "metrics.json").write_text(json.dumps(doc(
        RUN, [(7, "coco+aic+mpii+crowdpose")], {"coco": {"AP": 0.5}, "aic": {"AP": 0.25}},
        ["trained on CrowdPose, whose train images overlap COCO val"])))
    out = tmp_path / "pt"
    assert stage.main(["--scale", "smoke", "--results", str(tmp_path / "results"), "--out", str(out),
                       "--tables", "7", "--no-pdf", "--quiet"]) == 0
    sup = (out / "smoke" / "supplementary_multi_dataset.md").read_text()
    assert f"| `{RUN}` |" in sup and "| 50.0 | 25.0 |" in sup
    t7 = (out / "smoke" / "table7.md").read_text()
    assert "Reproduced row coco+aic+mpii+crowdpose: trained on CrowdPose" in t7
    assert "submission draft" in t7 and "| 77.5 |" in t7
