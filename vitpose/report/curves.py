"""Training curves in the report: each table's runs (loss and lr per logged iteration) and the val AP
per validated epoch, beside the released ViTPose-B log at a real-data scale.

Inputs are the runs' `train_curve.csv` files (written by the training job from its log,
`vitpose.engine.trainlog.write_curve`), read as lists of rows `{"iter", "epoch", "loss", "lr", ...,
"val_AP"}` (`read_curve`), and the runs' metrics.json (the final AP, at the last epoch).
"""
from __future__ import annotations

import math

from matplotlib.figure import Figure

from vitpose.report.tables import Table

COLUMNS = 3  # panels per figure row


def _train_rows(curve: list[dict]) -> list[dict]:
    return [r for r in curve if "loss" in r]


def _val_points(curve: list[dict], metrics: dict | None, epochs: int | None) -> list[tuple[float, float]]:
    """(epoch, AP x100) of every validation in the curve, then the final evaluation (metrics.json)."""
    points = [(r["epoch"] + 1, 100.0 * r["val_AP"]) for r in curve if "val_AP" in r]
    final = ((metrics or {}).get("metrics") or {}).get("AP")
    if final is not None and epochs:
        points.append((float(epochs), 100.0 * final))
    return points


def table_curves_figure(table: Table, curves: dict[str, list[dict]], synthetic: bool) -> Figure | None:
    """One panel per row of `table` whose run (first seed) has a training curve: the loss per logged
    iteration (log scale) and the lr on a second axis. None when no row has one."""
    rows = [r for r in table.rows if r.run in curves and _train_rows(curves[r.run])]
    if not rows:
        return None
    n_rows = math.ceil(len(rows) / COLUMNS)
    cols = min(COLUMNS, len(rows))
    fig = Figure(figsize=(4.2 * cols, 2.8 * n_rows + 0.6), dpi=110, layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False)
    for ax, row in zip(axes.flat, rows):
        train = _train_rows(curves[row.run])
        its = [r["iter"] for r in train]
        ax.plot(its, [r["loss"] for r in train], color="tab:red", linewidth=1.2, label="loss", gid="loss")
        ax.set_yscale("log")
        ax.set_xlabel("iteration", fontsize=7)
        ax.set_ylabel("training loss", fontsize=7, color="tab:red")
        lr_ax = ax.twinx()
        lr_ax.plot(its, [r["lr"] for r in train], color="0.45", linestyle="--", linewidth=1.0, gid="lr")
        lr_ax.set_ylabel("lr", fontsize=7, color="0.45")
        for a in (ax, lr_ax):
            a.tick_params(labelsize=6)
        ax.set_title(f"{row.label}\n{row.run}", fontsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    title = f"Table {table.number}: training curves ({table.scale} scale)"
    if synthetic:
        title = f"SMOKE SCALE: synthetic data, not a reproduction\n{title}"
    fig.suptitle(title, fontsize=9, color="darkred" if synthetic else "black")
    return fig


def val_ap_figure(runs: list[tuple[str, list[dict], dict | None, int | None]], released: dict | None,
                  released_run: str | None, scale: str, synthetic: bool) -> Figure | None:
    """AP on val per epoch: each run's validations during training and its final evaluation; the
    released log's curve (`released`: the reference file's `released_curve`) beside the run of its row.

    runs: (run id, curve rows, metrics.json or None, epochs). None when no run has two AP points
    or more and there is nothing to compare with.
    """
    series = [(rid, pts) for rid, curve, metrics, epochs in runs
              if len(pts := _val_points(curve, metrics, epochs)) >= 2]
    if not series and not (released and released_run):
        return None
    fig = Figure(figsize=(7.5, 4.8), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for rid, pts in series:
        width = 2.2 if rid == released_run else 1.0
        ax.plot([e for e, _ in pts], [a for _, a in pts], marker="o", markersize=3, linewidth=width,
                label=f"{rid} (ours)", gid=f"ours:{rid}")
    if released and released_run:
        pts = released["points"]
        ax.plot([e for e, _ in pts], [a for _, a in pts], color="black", marker="s", linestyle=":",
                label=f"{released['label']} (not a reproduction)", gid="released")
    ax.set_xlabel("epoch")
    ax.set_ylabel("AP on val (x100)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
    title = f"Val AP during training ({scale} scale)"
    if synthetic:
        title = f"SMOKE SCALE: synthetic data, not a reproduction\n{title}"
    ax.set_title(title, fontsize=9, color="darkred" if synthetic else "black")
    return fig
