"""Figure 1: throughput vs COCO val AP, bubble area proportional to parameters, with Pareto fronts.

The paper's points are Table 9's rows (reference file); ours are the Table 9 rows that have a
reproduced speed, AP and parameter count. `pareto_figure` returns a matplotlib Figure whose scatter
collections carry gids ("paper", "reproduced") so that tests can read the plotted points back;
`save_figure` also embeds the points as JSON in the PNG (text chunk) and PDF (Subject) metadata.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from matplotlib.figure import Figure

from vitpose.report.savefig import save_png_and_pdf
from vitpose.report.tables import Table

METADATA_KEY = "vitpose-figure1"
MAX_AREA = 1500.0  # pt^2 of the largest paper bubble (ViTPose-H, 632 M)
MIN_AREA = 12.0    # smaller bubbles (smoke-scale stand-ins) are drawn at this size to stay visible
SYNTHETIC_BANNER = "SMOKE SCALE: synthetic data, not a reproduction"


@dataclass(frozen=True)
class Point:
    """One bubble: x = throughput (images/s), y = AP (x100), area from params (M)."""

    label: str
    fps: float
    AP: float
    params_M: float


def points_from_table(table: Table, x: str, y: str, size: str, reproduced: bool) -> list[Point]:
    """Table 9's paper values (`reproduced=False`) or the rows with all three reproduced values."""
    keys = [c.key for c in table.columns]
    out = []
    for row in table.rows:
        cells = [row.cells[keys.index(k)] for k in (x, y, size)]
        values = [c.ours if reproduced else c.paper for c in cells]
        if all(v is not None for v in values):
            out.append(Point(row.label, *values))
    return out


def pareto_front(points: list[Point]) -> list[Point]:
    """Points no other point beats on both throughput and AP, ordered by throughput."""
    front = [p for p in points
             if not any(q.fps >= p.fps and q.AP >= p.AP and (q.fps > p.fps or q.AP > p.AP) for q in points)]
    return sorted(front, key=lambda p: (p.fps, p.AP))


def bubble_area(params_M: float, area_per_M: float) -> float:
    return max(MIN_AREA, params_M * area_per_M)


def area_per_param(paper: list[Point]) -> float:
    """One scale for both sets, fixed by the paper's largest model, so areas compare across sets."""
    biggest = max((p.params_M for p in paper), default=1.0)
    return MAX_AREA / biggest


def _draw(ax, points: list[Point], per_M: float, gid: str, label: str, color: str, marker: str) -> None:
    if not points:
        return
    ax.scatter([p.fps for p in points], [p.AP for p in points],
               s=[bubble_area(p.params_M, per_M) for p in points], c=color, alpha=0.45,
               edgecolors=color, linewidths=1.0, marker=marker, label=label, gid=gid, zorder=3)
    front = pareto_front(points)
    ax.plot([p.fps for p in front], [p.AP for p in front], color=color, linestyle="--", linewidth=1.2,
            gid=f"{gid}-front", label=f"Pareto front ({gid})", zorder=2)
    for p in points:
        ax.annotate(p.label, (p.fps, p.AP), xytext=(4, 4), textcoords="offset points", fontsize=6,
                    color=color)


def _axes_style(ax, xlabel: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("AP on MS COCO val")
    ax.grid(True, which="both", alpha=0.3)


def _legend_below(ax) -> None:
    # Below the axes: inside, it would hide bubbles wherever it went.
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7)
    for handle in legend.legend_handles:  # uniform legend markers regardless of bubble size
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([40.0])


def pareto_figure(paper: list[Point], ours: list[Point], *, paper_device: str, our_device: str,
                  scale: str, synthetic: bool) -> Figure:
    """The figure (not saved): x = throughput on a log axis, y = AP.

    At a real-data scale both sets share one pair of axes (that comparison is the point). At a
    synthetic scale the reproduced points get a panel of their own beside the paper's, with their own
    axes and bubble scale: a CPU-speed, tiny-model point would otherwise sit unreadably far from the
    paper's, and comparing them would mean nothing.
    """
    title = "Figure 1: throughput vs AP (bubble area ∝ parameters)"
    if synthetic:
        title = f"{SYNTHETIC_BANNER}\n{title}"
    if not synthetic:
        fig = Figure(figsize=(8.0, 6.0), dpi=150, layout="constrained")
        ax = fig.add_subplot()
        per_M = area_per_param(paper)
        _draw(ax, paper, per_M, "paper", f"paper ({paper_device})", "tab:blue", "o")
        _draw(ax, ours, per_M, "reproduced", f"reproduced, scale {scale} ({our_device})", "tab:red", "s")
        _axes_style(ax, f"Throughput (images/s) — paper: {paper_device}; reproduced: {our_device}")
        ax.set_title(title, fontsize=10)
        mine = ax
    else:
        fig = Figure(figsize=(12.0, 5.5), dpi=150, layout="constrained")
        left, mine = fig.subplots(1, 2)
        _draw(left, paper, area_per_param(paper), "paper", f"paper ({paper_device})", "tab:blue", "o")
        _axes_style(left, f"Throughput (images/s), {paper_device}")
        left.set_title("the paper's Table 9", fontsize=9)
        _legend_below(left)
        _draw(mine, ours, area_per_param(ours), "reproduced", f"reproduced, scale {scale} ({our_device})",
              "tab:red", "s")
        _axes_style(mine, f"Throughput (images/s), {our_device}")
        mine.set_title(f"reproduced at scale {scale} (synthetic data, stand-in models; own axes)",
                       fontsize=9, color="darkred")
        if ours:  # room for the labels of the few smoke points
            mine.margins(x=0.25, y=0.2)
        fig.suptitle(title, color="darkred", fontsize=10)
    if not ours:
        mine.text(0.99, 0.01, "no reproduced point yet (Table 9 runs missing)", transform=mine.transAxes,
                  ha="right", va="bottom", fontsize=7, color="tab:red")
    _legend_below(mine)
    return fig


def figure_data(paper: list[Point], ours: list[Point], **info) -> dict:
    """What the figure shows, as plain data (embedded in the files' metadata)."""
    return {**info, "paper": [asdict(p) for p in paper], "reproduced": [asdict(p) for p in ours],
            "paper_front": [p.label for p in pareto_front(paper)],
            "reproduced_front": [p.label for p in pareto_front(ours)]}


def save_figure(fig: Figure, pdf_path: Path, png_path: Path, data: dict) -> None:
    """Write the PDF and PNG, each with the plotted data in its metadata.

    Written in place: the report builder saves into a temporary directory that it swaps in whole.
    """
    blob = json.dumps(data, sort_keys=True)
    save_png_and_pdf(fig, png_path, pdf_path, dict(metadata={"Title": "ViTPose Figure 1", METADATA_KEY: blob}),
                     dict(metadata={"Title": "ViTPose Figure 1", "Subject": blob}))


def figure_csv(data: dict) -> str:
    """The plotted points as CSV (one row per bubble), for `dvc plots` and spreadsheets."""
    lines = ["source,label,images_per_s,AP,params_M"]
    for source in ("paper", "reproduced"):
        for p in data[source]:
            label = str(p["label"]).replace('"', "'")
            lines.append(f'{source},"{label}",{p["fps"]:g},{p["AP"]:g},{p["params_M"]:g}')
    return "\n".join(lines) + "\n"


def read_png_data(png_path: Path) -> dict:
    """The data embedded by `save_figure` in a PNG."""
    from PIL import Image

    with Image.open(png_path) as img:
        return json.loads(img.text[METADATA_KEY])
