"""The cost plan on the paper-scale registry: GPU-hours per run and table, disk, missing manual items."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from workflow.cost import COST_FILE, CostModel, cost_text, load_cost_file
from workflow.registry import PARAMS, REPO, Registry
from workflow.schema import load_params
from vitpose.utils.errors import ConfigError


@pytest.fixture(scope="module")
def paper():
    return Registry(load_params(PARAMS), "paper")


@pytest.fixture(scope="module")
def text(paper):
    return cost_text(paper, "a100")


def test_every_paper_table_with_runs_is_costed(text):
    for n in range(2, 10):
        total = re.search(rf"^  table {n}: ([\d,.]+) GPU-hours$", text, re.M)
        assert total and float(total.group(1).replace(",", "")) > 0, n
    assert "Table 10: COCO test-dev" in text
    total = re.search(r"^Total: ([\d,.]+) GPU-hours on NVIDIA A100", text, re.M)
    tables = sum(float(x.replace(",", "")) for x in re.findall(r"^  table \d+: ([\d,.]+) GPU-hours$", text, re.M))
    assert total and float(total.group(1).replace(",", "")) == pytest.approx(tables, abs=0.5)


def test_the_baseline_costs_what_the_released_run_took(paper, text):
    # ViTPose-B at 256x192 is the anchor: 210 epochs x 149,813 instances at 337 images/s = 25.9 h,
    # the released run's 8 x A100 x 3.3 h (REFERENCE §8), counted once though seven tables use it.
    line = next(x for x in text.splitlines() if x.strip().startswith("vitpose-b-classic-256x192 "))
    assert "finetune 25.9 h" in line and "210 epochs x 149,813 coco" in line
    assert sum(x.strip().startswith("vitpose-b-classic-256x192 ") for x in text.splitlines()) == 1


def test_costlier_variants_cost_more(paper):
    model = CostModel(paper, load_cost_file(), "a100")

    def hours(rid):
        return sum(j.gpu_hours for j in model.run_jobs(paper.get(rid)) if j.job == "finetune")

    base = hours("vitpose-b-classic-256x192")
    assert hours("vitpose-b-classic-576x432") > 4 * base        # ~6x the multiply-adds
    assert hours("vitpose-h-classic-256x192") > 5 * base
    assert hours("vitpose-b-classic-256x192-coco+aic+mpii") == pytest.approx(
        base * (149813 + 378374 + 22246) / 149813, rel=1e-6)   # the union of the datasets per epoch
    assert hours("vitpose-b-classic-256x192-kd-heatmap-vitpose-l") > base  # the teacher's forward
    mae = sum(j.gpu_hours for j in model.run_jobs(paper.get("mae-vitpose-b-coco-crop")))
    # 1,600 epochs (vs 210) of a cheaper step: a quarter of the patches through the encoder
    assert 3 * base < mae < 8 * base


def test_disk_and_missing_manual_downloads_are_listed(text):
    disk = re.search(r"^Disk: ([\d,.]+) GB = data ([\d,.]+) GB \(.*coco 20.4.*\), downloaded weights ([\d,.]+) GB, "
                     r"checkpoints and resumable states ([\d,.]+) GB$", text, re.M)
    assert disk, text[-2000:]
    assert float(disk.group(3)) == pytest.approx(8.2)           # the MAE ViT-B/L/H weights and ViTAE-G's
    assert "coco-testdev 6.7" in disk.group(0)                 # Table 10's test-dev images
    assert "vitae-g: vitae_g_pretrain.pth (nowhere public" in text
    assert re.search(r"^Released checkpoints \(`snakemake released`, not in the total\): 11 evaluations", text, re.M)
    assert float(disk.group(4).replace(",", "")) > 10
    # No data under the paper scale's data root in a checkout: every manual item is listed, with where.
    assert "Manual downloads still missing under data/" in text
    assert "COCO_val2017_detections_AP_H_56_person.json (the HRNet authors' shared folder" in text
    assert "aic: aic-train-images" in text


def test_an_unmeasured_gpu_is_refused_until_a_figure_is_given(paper, tmp_path):
    with pytest.raises(ConfigError, match=r"cost\.yaml: gpus\.h100\.train_images_per_s: no figure for NVIDIA H100"):
        cost_text(paper, "h100", table=6)
    with pytest.raises(ConfigError, match=r"gpus: no GPU type 'v100'"):
        cost_text(paper, "v100", table=6)
    out = cost_text(paper, "h100", table=6, train_ips=1011.0, infer_ips=2832.0)
    assert "given on the command line" in out
    line = next(x for x in out.splitlines() if "freeze-mhsa" in x)
    hours = float(re.search(r"finetune ([\d.]+) h", line).group(1))
    assert hours == pytest.approx(25.9 / 3, abs=0.1)            # three times the A100's throughput
    bad = tmp_path / "cost.yaml"
    bad.write_text(yaml.safe_dump({"schema": "other"}))
    with pytest.raises(ConfigError, match=r"cost\.yaml: schema: expected 'vitpose-cost/1'"):
        load_cost_file(bad)


def test_the_command_line_prints_the_plan():
    proc = subprocess.run([sys.executable, "-m", "workflow.registry", "plan", "--cost", "--scale", "paper",
                           "--table", "6"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Cost plan: scale paper, on NVIDIA A100" in proc.stdout and "table 6:" in proc.stdout
    assert COST_FILE.is_file()
    proc = subprocess.run([sys.executable, "-m", "workflow.registry", "plan", "--cost", "--scale", "paper",
                           "--gpu", "h200", "--table", "6"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "error:" in proc.stderr and "gpus.h200" in proc.stderr
