"""Every generated .tex compiles with pdflatex, and its rows and columns are the reference's."""
from __future__ import annotations

import re
import subprocess

import pytest

from vitpose.report import latex
from conftest import ensure_tool
from vitpose.report.build import build_report
from vitpose.report.reference import load_reference
from vitpose.report.tables import format_diff, format_value

REF = load_reference()
TEX_PACKAGES = ["texlive-latex-base", "texlive-latex-recommended"]


def ensure_pdflatex() -> str:
    """pdflatex, installed from Debian's texlive packages when missing (the tests run as root)."""
    return ensure_tool("pdflatex", TEX_PACKAGES)


def doc(run: str, serves: list[tuple[int, str]], **top) -> dict:
    d = {"schema": "vitpose-metrics/1", "run": run, "scale": "smoke", "synthetic": True,
         "serves": [{"table": t, "row": r} for t, r in serves],
         "metrics": {"AP": 0.6123, "AP50": 0.85, "AP75": 0.64, "APM": 0.5, "APL": 0.66, "AR": 0.66,
                     "AR50": 0.9, "AR75": 0.7},
         "params_M": 0.31, "backbone_params_M": 0.27, "gflops": 0.052, "trainable_gflops": 0.03,
         "train_memory_MB": 312.0,
         "throughput": {"images_per_s": 150.0, "device": "cpu_&_co #1", "batch": 8, "precision": "fp32"}}
    d.update(top)
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    ensure_pdflatex()
    base = [(2, "vitpose-b/classic"), (3, "imagenet-1k"), (4, "256x192"), (6, "none"), (7, "coco"),
            (8, "none"), (9, "vitpose-b")]
    metrics = [doc("base", base), doc("win", [(5, "window")], gflops=None),
               doc("r50", [(2, "resnet50/simple")], metrics={"AP": 0.0, "AP50": 1.0, "AR": 0.004, "AR50": None})]
    plan = [{"table": t, "row": r, "run": m["run"], "unavailable": None} for m in metrics for t, r in
            [(s["table"], s["row"]) for s in m["serves"]]]
    plan.append({"table": 8, "row": "token", "run": "kd", "unavailable": "needs distillation (50% done) & more"})
    hyper = {"vitpose-b": {"batch_size": 16, "lr": 1e-3, "weight_decay": 0.1, "layer_decay": 0.75,
                           "drop_path_rate": 0.3, "multi_dataset_batch_size": 1024, "multi_dataset_lr": 1e-3}}
    out = tmp_path_factory.mktemp("latex") / "paper_tables" / "smoke"
    return build_report(metrics, plan, hyper, REF, "smoke", out, progress=False, commit="abc")


def test_tables_pdf_is_compiled_from_the_tex_files(report):
    assert report.pdf_built
    pdf = report.out_dir / "tables.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    tex = (report.out_dir / "tables.tex").read_text()
    assert [int(n) for n in re.findall(r"\\input\{table(\d+)\}", tex)] == list(range(1, 11))
    assert not list(report.out_dir.glob("*.aux")) and not list(report.out_dir.glob("*.log"))


@pytest.mark.parametrize("number", range(1, 11))
def test_each_table_compiles_alone(report, number, tmp_path):
    pdflatex = ensure_pdflatex()
    fragment = (report.out_dir / f"table{number}.tex").read_text()
    assert "% Needs \\usepackage{booktabs,graphicx,amssymb}" in fragment
    (tmp_path / "t.tex").write_text(latex.latex_document(["fragment"], f"Table {number}", True))
    (tmp_path / "fragment.tex").write_text(fragment)
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, errors="replace", timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def _tabular_rows(tex: str) -> tuple[list[str], list[list[str]]]:
    """(group headers, body rows as cell lists) of the tabular in a generated fragment."""
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule", 1)[0]
    rows = [[c.strip() for c in line.rstrip("\\ ").split(" & ")] for line in body.strip().splitlines()]
    groups = re.findall(r"\\multicolumn\{[23]\}\{c\}\{([^}]*)\}", tex.split(r"\midrule", 1)[0])
    return groups, rows


@pytest.mark.parametrize("number", range(1, 11))
def test_tex_rows_and_columns_match_the_reference(report, number):
    ref = REF.tables[number]
    table = report.tables[number - 1]
    tex = (report.out_dir / f"table{number}.tex").read_text()
    groups, rows = _tabular_rows(tex)
    assert groups == [latex.escape(c.header) for c in ref.columns]
    assert len(rows) == len(ref.rows)
    # The report is synthetic (smoke): ours and paper per column, Δ only for same/differs columns.
    widths = [3 if col.diff == "equality" else 2 for col in ref.columns]
    for cells, r, model in zip(rows, ref.rows, table.rows):
        assert len(cells) == 1 + len(ref.attributes) + sum(widths)
        assert cells[0].startswith(latex.escape(r.label))
        for i, col in enumerate(ref.columns):
            ours, paper, diff = (cells[1 + len(ref.attributes) + sum(widths[:i]):][:widths[i]] + [None])[:3]
            assert paper == latex.escape(format_value(col, r.values[col.key])) + r.marks.get(col.key, "")
            value = model.cells[i].ours
            if value is None:
                assert ours == latex.DASH and diff in (latex.DASH, None)
            else:
                assert ours == latex.escape(format_value(col, value, ours=True))
                if widths[i] == 3:
                    d = format_diff(col, value, r.values[col.key])
                    assert diff in (d, f"${d}$", f"${d.replace(',', '{,}')}$")


def test_reproduced_values_and_reasons_reach_the_tex(report):
    t2 = (report.out_dir / "table2.tex").read_text()
    row = next(line for line in t2.splitlines() if line.startswith("ResNet-50 simple"))
    # AP 0.0 is a value, not missing; AR 0.4 keeps the paper's one decimal; no Δ at a synthetic scale
    assert row.split(" & ")[1:3] == ["0.0", "53.1"] and row.split(" & ")[5:7] == ["0.4", "62.0"]
    assert "metrics.json of run r50 has no metrics.AR50" in t2
    t8 = (report.out_dir / "table8.tex").read_text()
    assert r"needs distillation (50\% done) \& more" in t8               # escaped, and compiled above
    t9 = (report.out_dir / "table9.tex").read_text()
    assert r"cpu\_\&\_co \#1, batch 8, fp32" in t9
    t1 = (report.out_dir / "table1.tex").read_text()
    assert "ViTPose-B & 16 & 512 & differs" in t1


@pytest.mark.parametrize("number", range(1, 11))
def test_smoke_tex_says_synthetic(report, number):
    tex = (report.out_dir / f"table{number}.tex").read_text()
    caption = re.search(r"\\caption\{(.*)\}", tex).group(1)
    assert latex.SYNTHETIC_BANNER in caption


def test_a_table_with_released_values_has_a_released_subcolumn_and_compiles(tmp_path):
    from vitpose.report.tables import build_table

    pdflatex = ensure_pdflatex()
    runs = {"b": doc("b", [(9, "vitpose-b")]), "rel": doc("rel", [(9, "vitpose-b")], throughput=None)}
    plan = [{"table": 9, "row": "vitpose-b", "run": "b", "unavailable": None},
            {"table": 9, "row": "vitpose-b", "run": "rel", "unavailable": None, "released": True, "seed": None}]
    fragment = latex.table_to_latex(build_table(REF.tables[9], runs, plan, "paper", False))
    groups, rows = _tabular_rows(fragment.replace(r"\multicolumn{4}", r"\multicolumn{3}"))
    assert groups == [latex.escape(c.header) for c in REF.tables[9].columns]
    assert r"ours & released & paper & $\Delta$ & ours & released & paper & $\Delta$" in fragment
    row = next(cells for cells in rows if cells[0] == "ViTPose-B")
    # AP: ours 61.2, released 61.2 (the same document here), paper 75.8, Δ ours − paper; speed: none released
    assert row[4 + 8:4 + 12] == ["61.2", "61.2", "75.8", "$-14.6$"] and row[4 + 5] == latex.DASH
    (tmp_path / "t.tex").write_text(latex.latex_document(["fragment"], "Table 9", False))
    (tmp_path / "fragment.tex").write_text(fragment)
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, errors="replace", timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
