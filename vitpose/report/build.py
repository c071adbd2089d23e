"""Build `paper_tables/<scale>/` from metrics, the row -> run plan, the hyper-parameters in use and the
paper's reference numbers. Everything is written to a temporary sibling directory first and swapped
into place at the end, so the output directory is either the previous complete report or the new one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from matplotlib.figure import Figure
from tqdm import tqdm

from vitpose.report import curves as training_curves
from vitpose.report import latex, markdown, pareto, supplementary
from vitpose.report.html import index_html
from vitpose.report.index import IndexInfo, index_markdown
from vitpose.report.reference import Reference
from vitpose.report.savefig import save_png_and_pdf
from vitpose.report.tables import Table, build_hyperparameter_table, build_table
from vitpose.utils.errors import UserError
from vitpose.utils.io import atomic_path, atomic_write_text

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ReportResult:
    out_dir: Path
    tables: list[Table]
    figure: Figure
    figure_data: dict
    pdf_built: bool
    files: list[str]


def git_commit(repo: Path = REPO) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _check_plan(plan: list[dict]) -> None:
    for i, entry in enumerate(plan):
        if not isinstance(entry, dict) or not {"table", "row", "run"} <= set(entry):
            raise UserError(f"plan entry {i}: expected {{'table', 'row', 'run', 'unavailable'}}, got {entry!r}")
        if entry["table"] not in range(2, 11):
            raise UserError(f"plan entry {i} (run {entry['run']!r}): table {entry['table']!r} is not one of "
                            "the paper's result tables 2-10")


def _devices(metrics: list[dict]) -> str:
    names = sorted({(m.get("throughput") or {}).get("device") or "unknown device" for m in metrics
                    if (m.get("throughput") or {}).get("images_per_s")})
    return ", ".join(names) if names else "no measurement"


def _figure(reference: Reference, table9: Table, runs: dict[str, dict], scale: str, synthetic: bool):
    keys = {k: str(reference.figure1[k]) for k in ("x", "y", "size")}
    paper = pareto.points_from_table(table9, keys["x"], keys["y"], keys["size"], reproduced=False)
    ours = pareto.points_from_table(table9, keys["x"], keys["y"], keys["size"], reproduced=True)
    used = [runs[r.run] for r in table9.rows if r.run in runs]
    paper_device = f"{reference.speed_device}, batch {reference.speed_batch}"
    our_device = _devices(used)
    fig = pareto.pareto_figure(paper, ours, paper_device=paper_device, our_device=our_device, scale=scale,
                               synthetic=synthetic)
    data = pareto.figure_data(paper, ours, scale=scale, synthetic=synthetic, x="throughput (images/s)",
                              y="AP (COCO val, x100)", size=f"parameters (M, {keys['size']})",
                              paper_device=paper_device, reproduced_device=our_device)
    plotted = {p.label for p in ours}
    # Plain text (each writer escapes it).
    notes = [f"Reproduced points: the Table {table9.number} rows with a measured speed, AP and "
             f"{keys['size']} ({len(ours)} of {sum(not r.cited for r in table9.rows)}); speeds measured on "
             f"{our_device}."]
    notes += [f"{r.key} not plotted: " + (r.why_missing or "its speed, AP or parameter count is missing")
              for r in table9.rows if not r.cited and r.label not in plotted]
    return fig, data, notes


def _curve_figures(tables: list[Table], runs: dict[str, dict], curves: dict[str, list[dict]],
                   reference: Reference, scale: str, synthetic: bool) -> list[tuple[str, str, Figure]]:
    """(file stem, title, figure) of the training-curve figures: one per table with curves, and the
    val AP per epoch (with the released ViTPose-B log beside its row's run at a real-data scale)."""
    out = []
    for t in tables[1:]:  # Table 1 has no runs
        fig = training_curves.table_curves_figure(t, curves, synthetic)
        if fig is not None:
            out.append((f"curves_table{t.number}", f"Training curves, Table {t.number}", fig))
    released = reference.released_curve
    released_run = None
    if released and not synthetic:
        row = next((r for r in tables[released["table"] - 1].rows if r.key == released["row"]), None)
        released_run = row.run if row is not None else None
    # The val AP per epoch of the comparison table's runs (Table 9, which Figure 1 plots too): its
    # ViTPose-B row beside the released log at a real-data scale.
    compared = tables[int(reference.figure1["table"]) - 1]
    series = [(rid, curves[rid], runs.get(rid), (runs.get(rid) or {}).get("config", {}).get("train", {}).get("epochs"))
              for r in compared.rows for rid in r.runs[:1] if rid in curves]
    fig = training_curves.val_ap_figure(series, released, released_run, scale, synthetic)
    if fig is not None:
        out.append(("val_ap", f"Val AP during training, Table {compared.number}", fig))
    return out


def _figure3(q: dict, tmp: Path, synthetic: bool, files: list[str]) -> tuple[str, str, str]:
    """Figure 3 (qualitative results): a run's predictions drawn on val images; (id, title, png)."""
    from vitpose.data.keypoints import get_meta
    from vitpose.report.figure3 import coco_image_files, figure3

    title = f"Figure 3: {q['label']} on val images (run {q['run']})"
    figure3(q["results"], coco_image_files(q["val_ann"], q["val_images"]), get_meta("coco"),
            tmp / "figure3_qualitative", num_images=6, columns=3, synthetic=synthetic, title=title,
            # smoke models are less sure of themselves: draw every keypoint, with its score
            keypoint_threshold=0.0 if synthetic else 0.3)
    files += ["figure3_qualitative.pdf", "figure3_qualitative.png"]
    return "figure3", title, "figure3_qualitative.png"


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace `out_dir` by the finished `tmp` with renames (no moment shows a half-written report)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write(tmp: Path, name: str, text: str, files: list[str]) -> None:
    (tmp / name).write_text(text, encoding="utf-8")
    files.append(name)


def _build_parts(only: set[str], tables: list[Table], reference: Reference, runs: dict[str, dict],
                 scale: str, synthetic: bool, out_dir: Path) -> ReportResult:
    """Write just some outputs (`table5`, `figure1`), each file atomically, leaving the others alone.

    This is what a per-table target (`snakemake table5`) needs: it must not depend on, or rewrite,
    the runs of other tables. The full report (index, tables.pdf) is `build_report` without `only`.
    """
    wanted = {t.number: t for t in tables if f"table{t.number}" in only}
    unknown = only - {f"table{n}" for n in range(1, 11)} - {"figure1"}
    if unknown:
        raise ValueError(f"unknown report parts: {sorted(unknown)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    for n, t in sorted(wanted.items()):
        for name, text in ((f"table{n}.tex", latex.table_to_latex(t)), (f"table{n}.md", markdown.table_to_markdown(t))):
            atomic_write_text(out_dir / name, text)
            files.append(name)
    if 7 in wanted:  # Table 7's runs are the multi-dataset runs: their per-dataset scores go with it
        atomic_write_text(out_dir / supplementary.FILE,
                          supplementary.supplementary_markdown(list(runs.values()), scale, synthetic))
        files.append(supplementary.FILE)
    fig = fig_data = None
    if "figure1" in only:
        plotted = next(t for t in tables if t.number == int(reference.figure1["table"]))
        fig, fig_data, _ = _figure(reference, plotted, runs, scale, synthetic)
        with atomic_path(out_dir / "figure1_pareto.pdf") as pdf, atomic_path(out_dir / "figure1_pareto.png") as png:
            pareto.save_figure(fig, pdf, png, fig_data)
        atomic_write_text(out_dir / "figure1_pareto.csv", pareto.figure_csv(fig_data))
        files += ["figure1_pareto.pdf", "figure1_pareto.png", "figure1_pareto.csv"]
    return ReportResult(out_dir, list(wanted.values()), fig, fig_data, False, files)


def build_report(metrics: list[dict], plan: list[dict], hyper: dict, reference: Reference, scale: str,
                 out_dir: str | Path, *, synthetic: bool = False, plan_source: str = "workflow.registry.table_plan (params.yaml)",
                 hyper_note: str | None = None, commit: str | None = None, date: str | None = None,
                 compile_latex: bool | None = None, progress: bool = True,
                 notes: list[str] | None = None, only: set[str] | None = None,
                 curves: dict[str, list[dict]] | None = None,
                 val_metrics: dict[str, dict] | None = None, qualitative: dict | None = None) -> ReportResult:
    """Write every table (LaTeX + Markdown), Figure 1, the training curves, tables.pdf (if pdflatex),
    index.md and index.html to `out_dir`.

    metrics: validated metrics.json documents (`collect_metrics`); plan: `[{"table", "row", "run",
    "unavailable"}]`; hyper: `{model: {hyper-parameter: value}}` for Table 1; `hyper_note` says why
    hyper is empty, if it is. curves: the training curves of runs by id (`read_curve` rows of their
    train_curve.csv). val_metrics: the test-dev submissions' `val_metrics.json` by run id (Table 10's
    notes until the server's scores are imported). qualitative: Figure 3's inputs, {"run", "label",
    "results" (its results_keypoints.json), "val_ann", "val_images"}, or None. synthetic: the scale's
    data is generated (params.yaml
    `scales.<s>.synthetic`); a report holding any synthetic metrics is labelled synthetic either way.
    compile_latex None means "if pdflatex is installed".
    """
    _check_plan(plan)
    out_dir = Path(out_dir)
    runs = {m["run"]: m for m in metrics}
    synthetic = synthetic or any(m["synthetic"] for m in metrics)
    commit = commit if commit is not None else git_commit()
    date = date or datetime.now(timezone.utc).isoformat(timespec="seconds")
    compile_latex = latex.pdflatex_path() is not None if compile_latex is None else compile_latex

    tables = [build_hyperparameter_table(reference.tables[1], hyper, scale, synthetic, hyper_note)]
    tables += [build_table(reference.tables[n], runs, plan, scale, synthetic, val_metrics=val_metrics)
               for n in range(2, 11)]
    if only is not None:
        return _build_parts(only, tables, reference, runs, scale, synthetic, out_dir)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    files: list[str] = []
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the report is meant to be browsed
        bar = tqdm(total=len(tables) + 4, desc=f"paper tables ({scale})", unit="file", disable=not progress)
        for t in tables:
            _write(tmp, f"table{t.number}.tex", latex.table_to_latex(t), files)
            _write(tmp, f"table{t.number}.md", markdown.table_to_markdown(t), files)
            bar.update()
        plotted = next(t for t in tables if t.number == int(reference.figure1["table"]))
        fig, fig_data, fig_notes = _figure(reference, plotted, runs, scale, synthetic)
        pareto.save_figure(fig, tmp / "figure1_pareto.pdf", tmp / "figure1_pareto.png", fig_data)
        _write(tmp, "figure1_pareto.csv", pareto.figure_csv(fig_data), files)
        files += ["figure1_pareto.pdf", "figure1_pareto.png"]
        bar.update()
        figures = [("figure1", "Figure 1: throughput vs AP", "figure1_pareto.png")]
        for stem, name, cfig in _curve_figures(tables, runs, curves or {}, reference, scale, synthetic):
            save_png_and_pdf(cfig, tmp / f"{stem}.png", tmp / f"{stem}.pdf")
            files += [f"{stem}.png", f"{stem}.pdf"]
            figures.append((stem.replace("_", "-"), name, f"{stem}.png"))
        if qualitative is not None:
            figures.append(_figure3(qualitative, tmp, synthetic, files))
        bar.update()

        title = f"ViTPose: reproduced vs paper tables ({scale} scale)"
        _write(tmp, "tables.tex", latex.latex_document([f"table{t.number}" for t in tables], title, synthetic),
               files)
        pdf_built, pdf_status = False, ("not built: pdflatex is not installed (Debian: apt-get install "
                                        "texlive-latex-base texlive-latex-recommended)")
        if compile_latex:
            pdf_built, log = latex.compile_pdf(tmp / "tables.tex")
            if pdf_built:
                files.append("tables.pdf")
                pdf_status = "[tables.pdf](tables.pdf)"
                for ext in (".aux", ".log"):
                    with contextlib.suppress(FileNotFoundError):
                        (tmp / f"tables{ext}").unlink()
            else:
                pdf_status = f"not built: pdflatex failed on tables.tex (see tables.log): {log[-300:]!r}"
        bar.update()

        _write(tmp, supplementary.FILE, supplementary.supplementary_markdown(metrics, scale, synthetic), files)
        run_notes = [f"`{m['run']}`: {n}" for m in metrics for n in m.get("notes") or []]
        info = IndexInfo(scale, synthetic, date, commit, plan_source, pdf_status, fig_notes,
                         list(notes or []) + run_notes)
        used = {e["run"] for e in plan}
        unused = sorted(set(runs) - used)
        _write(tmp, "index.md", index_markdown(info, tables, metrics, unused, figures[1:]), files)
        _write(tmp, "index.html", index_html(info, tables, metrics, unused, figures, pdf_built), files)
        bar.update()
        bar.close()
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(out_dir, tables, fig, fig_data, pdf_built, files)
