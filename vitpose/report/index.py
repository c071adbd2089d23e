"""`index.md`: the page users open first: links to every table and the figure, provenance (scale,
date, git commit, plan source) and each missing run or value with the reason."""
from __future__ import annotations

from dataclasses import dataclass, field

from vitpose.report.markdown import escape
from vitpose.report.tables import Table

SYNTHETIC_BANNER = ("> **SMOKE SCALE: every number here comes from synthetic data and tiny stand-in "
                    "models. This is a test of the pipeline, not a reproduction of the paper.**")


@dataclass
class IndexInfo:
    scale: str
    synthetic: bool
    date: str
    git_commit: str | None
    plan_source: str                     # how the row -> run plan was obtained
    pdf_status: str                      # "tables.pdf" built, or why not
    figure_notes: list[str] = field(default_factory=list)  # Markdown
    extra_notes: list[str] = field(default_factory=list)


def _runs_section(metrics: list[dict]) -> list[str]:
    if not metrics:
        return ["No metrics.json was found for this scale: every reproduced cell is —.", ""]
    lines = ["| run | serves | synthetic | git commit | config hash | file |", "|---|---|---|---|---|---|"]
    for m in sorted(metrics, key=lambda m: m["run"]):
        serves = ", ".join(f"T{s['table']} `{s['row']}`" for s in m["serves"]) or "—"
        lines.append(f"| `{m['run']}` | {serves} | {'yes' if m['synthetic'] else 'no'} | "
                     f"{m.get('git_commit') or '—'} | {(m.get('config_hash') or '—')[:12]} | "
                     f"`{m.get('_path', '')}` |")
    return lines + [""]


def _missing_section(tables: list[Table]) -> list[str]:
    lines = []
    for t in tables:
        for key, col, why in t.missing():
            where = f"Table {t.number} `{key}`" + ("" if col is None else f" / {escape(col)}")
            lines.append(f"- {where}: {escape(why)}")
    return (lines or ["Nothing is missing."]) + [""]


def index_markdown(info: IndexInfo, tables: list[Table], metrics: list[dict], unused_runs: list[str],
                   figures: list[tuple[str, str, str]] = ()) -> str:
    """The page; figures: (section id, title, image file) of the figures after Figure 1 (curves)."""
    lines = [f"# ViTPose reproduction: paper tables ({info.scale} scale)", ""]
    if info.synthetic:
        lines += [SYNTHETIC_BANNER, ""]
    lines += ["The same report as one page for a browser: [index.html](index.html).", ""]
    lines += [f"- Scale: `{info.scale}`",
              f"- Generated: {info.date}",
              f"- Git commit: {info.git_commit or 'unknown (not a git checkout, or no commit yet)'}",
              f"- Row → run plan: {info.plan_source}",
              "- Paper values: `vitpose/report/paper_reference.yaml`, transcribed from the final NeurIPS "
              "2022 version of the paper.", ""]
    lines += ["## Tables", "", "| table | Markdown | LaTeX | reproduced cells |", "|---|---|---|---|"]
    for t in tables:
        filled = sum(c.ours is not None for r in t.rows if not r.cited for c in r.cells)
        total = sum(len(r.cells) for r in t.rows if not r.cited)
        lines.append(f"| {t.number}: {escape(t.title)} | [table{t.number}.md](table{t.number}.md) | "
                     f"[table{t.number}.tex](table{t.number}.tex) | {filled}/{total} |")
    lines += ["", f"All tables as one PDF: {info.pdf_status}", "",
              "Supplementary (multi-dataset runs on every dataset they trained on): "
              "[supplementary_multi_dataset.md](supplementary_multi_dataset.md)", ""]
    lines += ["## Figure 1", "", "[figure1_pareto.pdf](figure1_pareto.pdf) · "
              "[figure1_pareto.png](figure1_pareto.png)", "", "![Figure 1](figure1_pareto.png)", ""]
    lines += [f"- {escape(n)}" for n in info.figure_notes] + [""]
    if figures:
        lines += ["## Training curves", ""]
        for _, name, image in figures:
            stem = image.rsplit(".", 1)[0]
            lines += [f"- {name}: [{stem}.pdf]({stem}.pdf) · [{image}]({image})"]
        lines.append("")
    lines += ["## Missing runs and values", ""] + _missing_section(tables)
    lines += ["## Runs read", ""] + _runs_section(metrics)
    if unused_runs:
        lines += ["Runs with a metrics.json that no table row uses: "
                  + ", ".join(f"`{r}`" for r in unused_runs), ""]
    if info.extra_notes:
        lines += ["## Notes", ""] + [f"- {escape(n)}" for n in info.extra_notes] + [""]
    return "\n".join(lines)
