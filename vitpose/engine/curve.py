"""A run's training curve as CSV (`train_curve.csv` and its pre-training / token twins): the training
log's records (engine/trainlog.py) as one table the report and `dvc plots` read. Torch-free, so the
report stage reads curves without importing the engine.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path


def curve_csv(records: list[dict]) -> str:
    """The training curve as CSV: one row per log record, columns iter, epoch, loss, lr, then every
    other key in order of first appearance (objective scalars, `val_*`); a key a record lacks is an
    empty cell (validation records have no loss, training records no val_AP)."""
    columns = ["iter", "epoch", "loss", "lr"]
    for record in records:
        columns += [k for k in record if k not in columns and k != "time"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def read_curve(path: str | Path) -> list[dict[str, float]]:
    """The rows of a training curve written by `curve_csv`, numbers as floats (empty cells left out).
    ValueError for a cell that is not a number."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
