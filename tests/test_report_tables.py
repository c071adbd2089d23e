"""The table model (reproduced / paper / difference cells, reasons for gaps) and its Markdown form."""
from __future__ import annotations

import pytest

from vitpose.report.markdown import DASH, SYNTHETIC_BANNER, header_cells, table_to_markdown
from vitpose.report.reference import RefColumn, load_reference
from vitpose.report.tables import (TEST_DEV_REASON, build_hyperparameter_table, build_table, format_diff,
                                   format_value)
from vitpose.utils.errors import UserError

REF = load_reference()


def doc(run: str, serves: list[tuple[int, str]], ap: float = 0.7584, **top) -> dict:
    d = {"schema": "vitpose-metrics/1", "run": run, "scale": "smoke", "synthetic": True,
         "serves": [{"table": t, "row": r} for t, r in serves],
         "metrics": {"AP": ap, "AP50": 0.9, "AP75": 0.8, "APM": 0.7, "APL": 0.8, "AR": 0.81, "AR50": 0.95},
         "params_M": 88.6, "backbone_params_M": 85.8, "gflops": 17.1, "trainable_gflops": 10.9,
         "train_memory_MB": 14090.4,
         "throughput": {"images_per_s": 12.5, "device": "cpu", "batch": 4, "precision": "fp32"}}
    d.update(top)
    return d


def plan(*entries: tuple[int, str, str, str | None]) -> list[dict]:
    return [{"table": t, "row": r, "run": run, "unavailable": why} for t, r, run, why in entries]


def test_fractions_are_shown_x100_with_the_papers_precision_and_a_difference():
    runs = {"b": doc("b", [(6, "none")], ap=0.7612)}
    t = build_table(REF.tables[6], runs, plan((6, "none", "b", None)), "smoke", True)
    ap = t.cell("none", "AP")
    assert (ap.ours, ap.paper) == (pytest.approx(76.12), 75.8)
    col = {c.key: c for c in t.columns}
    assert format_value(col["AP"], ap.ours, ours=True) == "76.1"
    assert format_diff(col["AP"], ap.ours, ap.paper) == "+0.3"  # 76.1 - 75.8 as printed
    mem = t.cell("none", "train_memory_MB")
    assert format_value(col["train_memory_MB"], mem.paper) == "14,090"
    assert format_diff(col["train_memory_MB"], mem.ours, mem.paper) == "0"
    assert t.cell("none", "trainable_gflops").ours == 10.9  # Table 6 compares trainable GFLOPs


def test_formats():
    lr = RefColumn("lr", "Learning rate", format="sci", diff="equality")
    assert format_value(lr, 5e-4) == "5e-4" and format_value(lr, 2.5e-4) == "2.5e-4"
    assert format_diff(lr, 5e-4, 5e-4) == "same" and format_diff(lr, 1e-3, 5e-4) == "differs"
    params = RefColumn("backbone_params_M", "Params (M)", decimals=0)
    assert format_value(params, 0.27, ours=True) == "0.27"   # smoke stand-ins keep 2 significant digits
    assert format_value(params, 85.8, ours=True) == "86"
    assert format_diff(params, 0.27, 86.0) == "-85.73"
    assert format_diff(RefColumn("AP", "AP"), 75.76, 75.8) == "0.0"
    assert format_diff(RefColumn("m", "Memory", decimals=0, format="thousands"), 15000.0, 14090.0) == "+910"
    assert format_value(RefColumn("AP", "AP"), None) is None and format_diff(params, None, 86.0) is None


def test_every_gap_is_a_dash_with_its_reason():
    runs = {"full": doc("full", [(5, "full")], gflops=None)}
    p = plan((5, "full", "full", None), (5, "window", "win", None),
             (5, "window+shift", "ws", "needs distillation: not implemented yet"))
    t = build_table(REF.tables[5], runs, p, "smoke", True)
    missing = {(k, c): why for k, c, why in t.missing()}
    assert missing[("full", "GFLOPs")] == "metrics.json of run full has no gflops"
    assert "run win has no metrics.json yet" in missing[("window", None)]
    assert "run ws cannot be produced: needs distillation" in missing[("window+shift", None)]
    assert missing[("window+pool", None)] == "no run is planned for this row"
    assert len(missing) == 1 + 6  # one cell of `full`, and the six other rows
    md = table_to_markdown(t)
    assert "metrics.json of run full has no gflops" in md and "needs distillation" in md
    window = next(line for line in md.splitlines() if line.startswith("| Window |"))
    assert window.count(DASH) == 6  # ours of each of its 6 columns: no difference column at smoke
    real = table_to_markdown(build_table(REF.tables[5], runs, p, "paper", False))
    window = next(line for line in real.splitlines() if line.startswith("| Window |"))
    assert window.count(DASH) == 12  # ours and difference of each of its 6 columns


def test_plan_rows_must_exist_and_be_unique():
    with pytest.raises(UserError, match=r"table 5 row 'windowed'.*expected one of full, window"):
        build_table(REF.tables[5], {}, plan((5, "windowed", "r", None)), "smoke", True)
    with pytest.raises(UserError, match="assigned twice"):
        build_table(REF.tables[5], {}, plan((5, "full", "a", None), (5, "full", "b", None)), "smoke", True)
    with pytest.raises(UserError, match="not a reproducible row"):  # cited rows are never planned
        build_table(REF.tables[9], {}, plan((9, "hrnet-w32-256x192", "r", None)), "smoke", True)


def test_cited_rows_show_only_the_paper_and_are_not_missing():
    t = build_table(REF.tables[9], {}, [], "smoke", True)
    cited = [r for r in t.rows if r.cited]
    assert len(cited) == 10 and all(c.ours is None and c.paper is not None for r in cited for c in r.cells)
    assert {k for k, _, _ in t.missing()} == {"vitpose-b", "vitpose-b*", "vitpose-l", "vitpose-l*",
                                              "vitpose-h", "vitpose-h*"}
    assert "*(cited)*" in table_to_markdown(t)


def test_table9_reads_backbone_params_speed_and_names_the_device():
    runs = {"b": doc("b", [(9, "vitpose-b")])}
    t = build_table(REF.tables[9], runs, plan((9, "vitpose-b", "b", None)), "smoke", True)
    assert t.cell("vitpose-b", "backbone_params_M").ours == 85.8
    assert t.cell("vitpose-b", "images_per_s").ours == 12.5
    assert any("Reproduced speed measured on: cpu, batch 4, fp32" in n for n in t.notes)


def test_table10_is_test_dev_unless_a_metrics_file_provides_it():
    t = build_table(REF.tables[10], {}, plan((10, "vitpose-g", "g", "needs vitae_g")), "smoke", True)
    reasons = dict((k, why) for k, _, why in t.missing())
    assert set(reasons) == {"vitpose-g", "vitpose-g+"}
    assert all(TEST_DEV_REASON in why for why in reasons.values())
    assert "needs vitae_g" in reasons["vitpose-g"]
    runs = {"g": doc("g", [(10, "vitpose-g")], ap=0.805, split="test-dev")}
    t = build_table(REF.tables[10], runs, plan((10, "vitpose-g", "g", None)), "paper", False)
    assert t.cell("vitpose-g", "AP").ours == pytest.approx(80.5)
    assert [k for k, _, _ in t.missing()] == ["vitpose-g+"]


def test_table10_notes_the_val_ap_of_a_submission_not_scored_yet():
    val = doc("g", [(10, "vitpose-g")], ap=0.453, notes=["single model", "val of the model(s) submitted"])
    p = plan((10, "vitpose-g", "g", None), (10, "vitpose-g+", "gplus", None))
    t = build_table(REF.tables[10], {}, p, "smoke", True, val_metrics={"g": val})
    assert t.cell("vitpose-g", "AP").ours is None  # val AP is never shown as a test-dev number
    reasons = dict((k, why) for k, _, why in t.missing())
    assert "scored only by the COCO server" in reasons["vitpose-g"] and "stages.testdev_scores" in reasons["vitpose-g"]
    noted = [n for n in t.notes if "COCO val AP" in n]
    assert noted == ["Reproduced row vitpose-g: COCO val AP of the submitted model(s), scored by this code: 45.3 "
                     "(run g; single model); the test-dev cells wait for the COCO server"]
    # Once the server's scores are imported, the row's numbers and notes are metrics.json's.
    runs = {"g": doc("g", [(10, "vitpose-g")], ap=0.805, split="test-dev",
                     notes=["scored by the COCO server on 2024-05-01"])}
    t = build_table(REF.tables[10], runs, p, "paper", False, val_metrics={"g": val})
    assert t.cell("vitpose-g", "AP").ours == pytest.approx(80.5)
    assert not [n for n in t.notes if "COCO val AP" in n]
    assert "Reproduced row vitpose-g: scored by the COCO server on 2024-05-01" in t.notes


def released_plan(*rows: tuple[int, str, str]) -> list[dict]:
    return [{"table": t, "row": r, "run": run, "seed": None, "released": True, "unavailable": None,
             "checkpoint": f"data/weights/vitpose/{run}.pth"} for t, r, run in rows]


def test_released_checkpoints_show_beside_ours_and_the_paper():
    runs = {"b": doc("b", [(2, "vitpose-b/classic")], ap=0.7612),
            "rel-b": doc("rel-b", [(2, "vitpose-b/classic")], ap=0.7571)}
    p = plan((2, "vitpose-b/classic", "b", None), (2, "vitpose-l/classic", "l", None))
    p += released_plan((2, "vitpose-b/classic", "rel-b"), (2, "vitpose-l/classic", "rel-l"))
    t = build_table(REF.tables[2], runs, p, "paper", False)
    assert t.released and t.cell("vitpose-b/classic", "AP").released == pytest.approx(75.71)
    assert t.cell("vitpose-b/classic", "AP").ours == pytest.approx(76.12)  # ours is still ours
    md = table_to_markdown(t)
    assert "| AP ours | AP released | AP paper | AP Δ |" in md
    row_b = next(line for line in md.splitlines() if line.startswith("| ViTPose-B classic |"))
    assert row_b.startswith("| ViTPose-B classic | 76.1 | 75.7 | 75.8 | +0.3 |")  # Δ stays ours − paper
    row_r50 = next(line for line in md.splitlines() if line.startswith("| ResNet-50 classic |"))
    assert row_r50.split(" | ")[2] == DASH  # nothing released for this row: a dash, and no gap listed
    gaps = {(k, c): why for k, c, why in t.missing()}
    assert ("resnet50/classic", "released") not in gaps
    assert "data/weights/vitpose/rel-l.pth" in gaps[("vitpose-l/classic", "released")]
    assert any(n.startswith("Released: the authors' released checkpoints") and "rel-b" in n for n in t.notes)
    # A table without released entries is unchanged.
    t6 = build_table(REF.tables[6], {}, plan((6, "none", "x", None)), "paper", False)
    assert not t6.released and "released" not in " ".join(header_cells(t6))


def test_table1_comes_from_the_hyperparameters_in_use():
    hyper = {"vitpose-b": {"batch_size": 16, "lr": 1e-3, "weight_decay": 0.1, "layer_decay": 0.75,
                           "drop_path_rate": 0.3, "multi_dataset_batch_size": 1024, "multi_dataset_lr": 1e-3}}
    t = build_hyperparameter_table(REF.tables[1], hyper, "smoke", True)
    md = table_to_markdown(t)
    row_b = next(line for line in md.splitlines() if line.startswith("| ViTPose-B |"))
    assert row_b.split(" | ")[1:4] == ["16", "512", "differs"]
    assert "| 0.75 | 0.75 | same |" in row_b and "| 1e-3 | 5e-4 | differs |" in row_b
    reasons = {k: w for k, _, w in t.missing()}
    assert reasons["vitpose-l"] == "params.yaml has no hyper-parameters for vitpose-l"
    empty = build_hyperparameter_table(REF.tables[1], {}, "smoke", True, why_no_hyper="registry missing")
    assert {w for _, _, w in empty.missing()} == {"registry missing"}


@pytest.mark.parametrize("scale", ["smoke", "paper"])
@pytest.mark.parametrize("number", range(1, 11))
def test_markdown_has_the_papers_rows_and_columns(number, scale):
    ref, synthetic = REF.tables[number], scale == "smoke"
    t = (build_hyperparameter_table(ref, {}, scale, synthetic) if number == 1
         else build_table(ref, {}, [], scale, synthetic))
    lines = table_to_markdown(t).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = [line for line in lines[head + 2:] if line.startswith("| ")]
    assert len(rows) == len(ref.rows)
    # ours + paper per column, and Δ: same/differs at every scale, ours − paper only at real scales
    widths = [3 if col.diff == "equality" or not synthetic else 2 for col in ref.columns]
    width = 1 + len(ref.attributes) + sum(widths)
    assert len(header_cells(t)) == width and lines[head].count(" | ") == width - 1
    for line, r in zip(rows, ref.rows):
        assert line.count(" | ") == width - 1
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert cells[0].replace("\\", "").startswith(r.label)
        for i, col in enumerate(ref.columns):
            paper = cells[1 + len(ref.attributes) + sum(widths[:i]) + 1]
            assert paper.replace("\\", "") == format_value(col, r.values[col.key]) + r.marks.get(col.key, "")


def test_smoke_tables_say_synthetic_and_real_ones_do_not():
    assert SYNTHETIC_BANNER in table_to_markdown(build_table(REF.tables[4], {}, [], "smoke", True))
    assert "SMOKE" not in table_to_markdown(build_table(REF.tables[4], {}, [], "paper", False))


def test_table3_shows_the_measured_pretraining_volume_beside_the_papers():
    pre = {"run": "mae-b-coco-crop", "set": "coco-crop", "images": 149813, "epochs": 1600}
    runs = {"c": doc("c", [(3, "coco-crop")], pretraining=pre), "i": doc("i", [(3, "imagenet-1k")])}
    t = build_table(REF.tables[3], runs, plan((3, "coco-crop", "c", None), (3, "imagenet-1k", "i", None),
                                              (3, "coco+aic-crop", "x", "needs something")), "smoke", True)
    rows = {r.key: r for r in t.rows}
    assert rows["coco-crop"].attributes == ["150K (ours: 149,813)"]
    assert rows["imagenet-1k"].attributes == ["1M"]       # released weights: nothing measured here
    assert rows["coco+aic-crop"].attributes == ["500K"]   # no run: the paper's value alone
    assert "150K (ours: 149,813)" in table_to_markdown(t)


def test_seed_repeats_show_mean_std_and_n():
    runs = {"b": doc("b", [(6, "none")], ap=0.7612), "b1": doc("b1", [(6, "none")], ap=0.7588),
            "b2": doc("b2", [(6, "none")], ap=0.7700)}
    entries = [{"table": 6, "row": "none", "run": r, "seed": s, "unavailable": None}
               for r, s in (("b", 0), ("b1", 1), ("b2", 2))]
    entries += [{"table": 6, "row": "mhsa", "run": r, "seed": s, "unavailable": None}
                for r, s in (("m", 0), ("m1", 1), ("m2", 2))]
    t = build_table(REF.tables[6], runs, entries, "paper", False)
    ap = t.cell("none", "AP")
    assert ap.n == 3 and ap.ours == pytest.approx(76.3333, abs=1e-3)
    assert ap.std == pytest.approx(0.5893, abs=1e-3)
    md = table_to_markdown(t)
    row = next(line for line in md.splitlines() if line.startswith("| nothing |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    # the n column: 3 of 3 seeds; AP: the mean ± std; Δ: of the mean, as printed (76.3 − 75.8)
    assert cells[3] == "3/3" and "76.3 ± 0.6" in cells and "+0.5" in cells
    mhsa = next(line for line in md.splitlines() if line.startswith("| MHSA |"))
    assert "0/3" in mhsa  # planned, none finished
    assert "mean ± sample standard deviation over the n seeds" in md
    # A seed that has not finished is left out of the mean: n = 2.
    partial = build_table(REF.tables[6], {k: runs[k] for k in ("b", "b1")}, entries, "paper", False)
    assert partial.cell("none", "AP").n == 2 and "2/3" in table_to_markdown(partial)
    with pytest.raises(UserError, match="assigned twice at seed 1"):
        build_table(REF.tables[6], runs, entries + [dict(entries[1], run="other")], "paper", False)


def test_metrics_keep_the_papers_decimals_and_sizes_two_significant_digits():
    col = {c.key: c for c in REF.tables[9].columns}
    assert format_value(col["AP"], 0.0354, ours=True) == "0.0"   # AP as the paper prints it
    assert format_value(col["AP"], 31.26, ours=True) == "31.3"
    assert format_value(col["backbone_params_M"], 0.27, ours=True) == "0.27"  # a smoke stand-in's size
