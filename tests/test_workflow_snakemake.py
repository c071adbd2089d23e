"""Real Snakemake on the real Snakefile: lint, dry runs of both scales, fail-fast behaviour, job kinds.

Every call runs in a fresh copy of the project (never in the checkout, whose results/, work/ and data/
belong to the user), shared by this module's tests: they only dry-run, so nothing is written there
but Snakemake's own metadata.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import copy_project
from workflow.registry import Registry
from workflow.schema import load_params

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("dry"))


def snakemake(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--nolock", *args], cwd=project, capture_output=True, text=True,
                          timeout=300, env=env)


def test_lint_passes(project):
    proc = snakemake(project, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_paper_scale_dry_run_lists_every_run_without_data(project):
    assert not (project / "data").exists()  # the dry run needs no data
    proc = snakemake(project, "-n", "all", "--config", "scale=paper")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    reg = Registry(load_params(project / "params.yaml"), "paper")
    for table in range(2, 11):
        for run in reg.table_runs(table):
            kind = "unavailable" if run.missing else "testdev" if run.stage == "testdev" else "finetune"
            assert f"{kind} {run.id}:" in out, (table, run.id)
    # The paper's schedule and batch sizes are what the jobs will use.
    line = re.search(r"finetune vitpose-h-classic-256x192: (.*)", out).group(1)
    assert "210 epochs" in line and "batch 512" in line and "vitpose-h," in line
    assert "finetune vitpose-b-classic-576x432: " in out
    # Downloads feed training: data and MAE weight jobs are in the DAG.
    assert "stages.download coco --scale paper" in out
    assert "stages.download mae_pretrain_vit_base --scale paper" in out


def test_smoke_table5_dry_run_has_its_seven_runs(project):
    proc = snakemake(project, "-n", "table5")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["finetune"] == "7" and counts["evaluate"] == "7" and counts["benchmark"] == "7"
    # Smoke ViTs whose pretrain is imagenet-1k start at random (scales.smoke.imagenet_init: none): no
    # pre-training upstream, only the synthetic COCO.
    assert "pretrain" not in counts and "pretrain_data" not in counts
    assert counts["config"] == "7" and counts["data"] == "1"


def test_seed_repeats_double_the_runs_of_a_table(project):
    proc = snakemake(project, "-n", "table6", "--config", "seeds=[0,1]")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["finetune"] == "6" and counts["evaluate"] == "6"
    assert "finetune vitpose-b-classic-256x192-freeze-mhsa-seed1:" in out
    assert re.search(r"finetune vitpose-b-classic-256x192-freeze-mhsa-seed1: .*seed 1", out)


def test_table_of_a_missing_capability_fails_at_once(project):
    # ImageNet-supervised ResNet weights are still missing at a real-data scale: a table made to study
    # them is refused before any job, naming the capability.
    studies = ["--config", "scale=paper", "tables={table2: {studies: resnet_imagenet_weights}}"]
    proc = snakemake(project, "-n", "table2", *studies)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "table2: cannot be reproduced" in out and "resnet_imagenet_weights" in out
    proc = snakemake(project, "-n", "table2", "--config", "scale=paper")  # studying something else: its rows run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "finetune vitpose-b-classic-256x192:" in out and "finetune resnet50-classic-256x192:" not in out


def _counts(out: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))


def dry_run(project: Path, *args: str) -> tuple[str, dict[str, str]]:
    """(output, jobs per rule) of a successful `snakemake -n`."""
    proc = snakemake(project, "-n", *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out, _counts(out)


def test_table10_paper_dry_run_lists_training_submission_and_the_manual_steps(project):
    out, counts = dry_run(project, "table10", "--config", "scale=paper")
    # ViTPose-G, ViTPose-H* and ViTPose-L* trained once each; two submissions, each uploaded and imported.
    assert counts["finetune"] == "3" and counts["testdev"] == "2", counts
    assert counts["testdev_upload"] == "2" and counts["testdev_scores"] == "2", counts
    for run in ("vitpose-g-classic-576x432-coco+aic", "vitpose-h-classic-256x192-coco+aic+mpii",
                "vitpose-l-classic-256x192-coco+aic+mpii"):
        assert f"finetune {run}:" in out
    assert re.search(r"testdev_upload testdev-vitpose-g-classic-576x432-coco\+aic: MANUAL STEP: upload results/paper/"
                     r"testdev-vitpose-g-classic-576x432-coco\+aic/person_keypoints_test-dev2017_vitpose_results.zip", out)
    assert "stages.testdev_scores --config results/paper/testdev-vitpose-g-classic-576x432-coco+aic/config.json " \
           "--scores results/paper/testdev-vitpose-g-classic-576x432-coco+aic/testdev_server_scores.json" in out
    # The test-dev data (image list, images: downloads; detections: manual) and ViTAE-G's weights (manual).
    assert "stages.download coco-testdev --scale paper" in out
    assert "stages.download vitae_g_pretrain --scale paper" in out


def test_table10_smoke_dry_run_stops_at_the_submission(project):
    out, counts = dry_run(project, "table10")
    assert counts["testdev"] == "2" and "testdev_upload" not in counts and "testdev_scores" not in counts
    assert "stages.download coco-testdev --scale smoke" in out
    # `all` builds the submissions too (every producible job), never the manual steps
    counts = dry_run(project, "all")[1]
    assert counts["testdev"] == "2" and "testdev_upload" not in counts


def test_released_dry_runs(project):
    out, counts = dry_run(project, "released", "--config", "scale=paper")
    assert counts["evaluate_released"] == "11" and counts["weights"] == "11", counts
    assert "stages.download vitpose-b-multi-coco --scale paper --data-root data" in out
    assert ("stages.evaluate --config results/paper/released-vitpose-b-classic-256x192/config.json "
            "--checkpoint data/weights/vitpose/vitpose-b.pth --released") in out
    # Without their files, `all` evaluates no released checkpoint (at either scale).
    for scale in ("smoke", "paper"):
        assert "evaluate_released" not in dry_run(project, "all", "--config", f"scale={scale}")[1], scale


def test_misspelt_config_key_fails_before_any_job(project, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluation"]["flip_tset"] = True
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params))
    proc = snakemake(project, "-n", "table5", "--configfile", str(bad))
    assert proc.returncode != 0
    assert "evaluation.flip_tset" in proc.stdout + proc.stderr
    proc = snakemake(project, "-n", "table5", "--config", "seeds=[minus-one]")
    assert proc.returncode != 0 and "seeds" in proc.stdout + proc.stderr


@pytest.mark.parametrize("override, culprit", [
    # A resolved run config that no job could run: refused when the DAG is built, naming run and key.
    # (at paper scale: the smoke scale rounds every size to the stride, input_scale)
    ('scale=paper tables={table5: {rows: {window: {input: 250x190}}}}', "input_size"),
    ('tables={table5: {rows: {full: {shift: true}}}}', "shift"),
    ('tables={table5: {rows: {window: {window: 64x64}}}}', "window_size"),
])
def test_impossible_run_values_fail_before_any_job(project, override, culprit):
    proc = snakemake(project, "-n", "table5", "--config", *override.split(" ", 1 if override.startswith("scale=") else 0))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert culprit in out and "vitpose-b-classic" in out and "Job stats" not in out


def test_a_dependent_job_kind_is_one_job_in_the_dag(project):
    """A kind consuming another run's output (a test-only kind, loaded as an extension) gets its edge, and
    one upstream configuration needed by two runs is one job."""
    env = dict(os.environ, VITPOSE_JOB_KINDS="job_kind_probe",
               PYTHONPATH=os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    students = ["vitpose-b-classic-256x192", "vitpose-b-simple-256x192"]
    proc = snakemake(project, "-n", *[f"results/smoke/{s}/probe.json" for s in students], env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["probe"] == "2" and counts["finetune"] == "1", counts
    assert out.count("finetune vitpose-l-classic-256x192:") == 1
    assert "results/smoke/vitpose-l-classic-256x192/model.pth" in out
    # The generated dvc.yaml has the same edge (and the teacher's stage once).
    proc = subprocess.run([sys.executable, "-m", "workflow.dvcgen"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for s in students:
        assert "results/smoke/vitpose-l-classic-256x192/model.pth" in stages[f"probe-{s}"]["deps"]
    assert "finetune-vitpose-l-classic-256x192" in stages
    assert sum(1 for n in stages if n.startswith("probe-")) == 2
    subprocess.run(["git", "checkout", "dvc.yaml"], cwd=project, check=True, capture_output=True)
