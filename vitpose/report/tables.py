"""The table model: each paper table as rows x columns of (reproduced, paper, difference) cells.

`build_table` joins one reference table with the runs the plan assigns to its rows; the LaTeX and
Markdown writers only render the result. A reproduced cell is either a number read from a run's
metrics.json (or, for Table 1, the hyper-parameters in use) or None with the reason it is missing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from vitpose.report.reference import RefColumn, RefTable
from vitpose.utils.errors import UserError

# metrics.json top-level numbers a column may name; anything else is a key of "metrics" (a fraction).
TOP_LEVEL_FIELDS = ("train_memory_MB", "gflops", "trainable_gflops", "params_M", "backbone_params_M",
                    "wall_time_s")
THROUGHPUT_FIELD = "images_per_s"
TEST_DEV_REASON = "COCO test-dev is scored only by the COCO evaluation server"


@dataclass
class Cell:
    """One compared column of one row; `why_missing` says why `ours` is None."""

    ours: float | None
    paper: float | None
    why_missing: str | None = None
    mark: str = ""  # the paper's footnote sign after its value ("*")


@dataclass
class Row:
    key: str
    label: str
    cited: bool
    attributes: list[str | bool]
    cells: list[Cell]
    run: str | None = None
    why_missing: str | None = None  # why the whole row has no reproduced values


@dataclass
class Table:
    number: int
    title: str
    layout: str
    label_header: str
    attribute_headers: list[str]
    columns: list[RefColumn]
    rows: list[Row]
    scale: str
    synthetic: bool
    notes: list[str] = field(default_factory=list)

    def missing(self) -> list[tuple[str, str | None, str]]:
        """(row key, column header or None for the whole row, reason) for each reproducible gap."""
        out = []
        for row in self.rows:
            if row.cited:
                continue
            if row.why_missing is not None:
                out.append((row.key, None, row.why_missing))
                continue
            for col, cell in zip(self.columns, row.cells):
                if cell.ours is None:
                    out.append((row.key, col.header, cell.why_missing or "no value"))
        return out

    def cell(self, row_key: str, column_key: str) -> Cell:
        for row in self.rows:
            if row.key == row_key:
                return row.cells[[c.key for c in self.columns].index(column_key)]
        raise KeyError(row_key)


# -- formatting (shared by the LaTeX and Markdown writers) ------------------------------------------
def format_value(col: RefColumn, value: float | None, ours: bool = False) -> str | None:
    """The value as the paper prints it (None stays None: each writer has its own dash).

    Reproduced values keep at least two significant digits: a smoke-scale model of 0.3 M parameters
    must not print as "0" in a column the paper rounds to whole numbers.
    """
    if value is None:
        return None
    if ours and col.format != "sci" and value != 0 and abs(value) < 10 ** (1 - col.decimals):
        decimals = 1 - math.floor(math.log10(abs(value)))
        return f"{value:,.{decimals}f}" if col.format == "thousands" else f"{value:.{decimals}f}"
    if col.format == "sci":
        if value == 0:
            return "0"
        exp = math.floor(math.log10(abs(value)))
        mantissa = f"{value / 10 ** exp:.3g}"
        return f"{mantissa}e{exp}"
    if col.format == "thousands":
        return f"{value:,.{col.decimals}f}"
    return f"{value:.{col.decimals}f}"


def format_diff(col: RefColumn, ours: float | None, paper: float | None) -> str | None:
    """ours - paper on the displayed value of ours, so the row adds up as printed ('same' / 'differs'
    for hyper-parameters)."""
    if ours is None or paper is None:
        return None
    if col.diff == "equality":
        return "same" if math.isclose(ours, paper, rel_tol=1e-9, abs_tol=1e-12) else "differs"
    shown = format_value(col, ours, ours=True)
    decimals = max(col.decimals, len(shown.partition(".")[2]))
    d = float(shown.replace(",", "")) - paper
    if abs(d) < 0.5 * 10 ** -decimals:
        return f"{0:.{decimals}f}"
    sep = "," if col.format == "thousands" else ""
    return f"{d:+{sep}.{decimals}f}"


# -- reading reproduced values ---------------------------------------------------------------------
def reproduced_value(metrics: dict, key: str) -> tuple[float | None, str]:
    """(value in table units, the metrics.json field it came from); fractions become x100."""
    if key == THROUGHPUT_FIELD:
        value = (metrics.get("throughput") or {}).get(THROUGHPUT_FIELD)
        return value, f"throughput.{THROUGHPUT_FIELD}"
    if key in TOP_LEVEL_FIELDS:
        return metrics.get(key), key
    value = (metrics.get("metrics") or {}).get(key)
    return (None if value is None else 100.0 * value), f"metrics.{key}"


def _cells_from_metrics(ref: RefTable, paper_row, metrics: dict) -> list[Cell]:
    cells = []
    for col in ref.columns:
        value, source = reproduced_value(metrics, col.key)
        why = None if value is not None else f"metrics.json of run {metrics['run']} has no {source}"
        cells.append(Cell(value, paper_row.values[col.key], why, paper_row.marks.get(col.key, "")))
    return cells


def _cells_missing(ref: RefTable, paper_row, why: str) -> list[Cell]:
    return [Cell(None, paper_row.values[c.key], why, paper_row.marks.get(c.key, "")) for c in ref.columns]


def _plan_rows(ref: RefTable, plan: list[dict]) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    reproducible = [r.key for r in ref.rows if not r.cited]
    for entry in plan:
        if entry.get("table") != ref.number:
            continue
        row = entry.get("row")
        if row not in reproducible:
            raise UserError(f"plan: table {ref.number} row {row!r} (run {entry.get('run')!r}) is not a "
                            f"reproducible row of the paper's Table {ref.number}; expected one of "
                            f"{', '.join(reproducible)}")
        if row in entries:
            raise UserError(f"plan: table {ref.number} row {row!r} is assigned twice (runs "
                            f"{entries[row].get('run')!r} and {entry.get('run')!r})")
        entries[row] = entry
    return entries


def _attributes(ref: RefTable, paper_row, metrics: dict | None = None) -> list[str | bool]:
    """The row's descriptive cells; an attribute with a measured counterpart (`ours`) shows both."""
    out = []
    for a in ref.attributes:
        value = paper_row.attributes[a.key]
        measured = _field(metrics, a.ours) if a.ours and metrics else None
        if measured is not None and isinstance(value, str):
            value = f"{value} (ours: {measured:,})" if isinstance(measured, int) else f"{value} (ours: {measured})"
        out.append(value)
    return out


def _field(doc: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def build_table(ref: RefTable, runs: dict[str, dict], plan: list[dict], scale: str, synthetic: bool,
                missing_plan_reason: str = "no run is planned for this row") -> Table:
    """Table N (2-10) from the reference, the plan's row -> run entries and the runs' metrics by id."""
    entries = _plan_rows(ref, plan)
    rows = []
    for prow in ref.rows:
        attrs = _attributes(ref, prow)
        if prow.cited:
            rows.append(Row(prow.key, prow.label, True, attrs,
                            _cells_missing(ref, prow, "cited by the paper from other work"),
                            why_missing="cited by the paper from other work"))
            continue
        entry = entries.get(prow.key)
        run_id = entry.get("run") if entry else None
        if run_id in runs:
            attrs = _attributes(ref, prow, runs[run_id])
            rows.append(Row(prow.key, prow.label, False, attrs, _cells_from_metrics(ref, prow, runs[run_id]),
                            run=run_id))
            continue
        if entry is None:
            why = missing_plan_reason
        elif entry.get("unavailable"):
            why = f"run {run_id} cannot be produced: {entry['unavailable']}"
        else:
            why = f"run {run_id} has no metrics.json yet (not run, or it failed)"
        if ref.test_dev:
            why = f"{TEST_DEV_REASON}; no metrics.json provides it ({why})"
        rows.append(Row(prow.key, prow.label, False, attrs, _cells_missing(ref, prow, why), run=run_id,
                        why_missing=why))
    table = Table(ref.number, ref.title, ref.layout, ref.label_header, [a.header for a in ref.attributes],
                  list(ref.columns), rows, scale, synthetic)
    if ref.note:
        table.notes.append(f"Paper: {ref.note}")
    if any(c.key == THROUGHPUT_FIELD for c in ref.columns):
        table.notes.append(_speed_note([runs[r.run] for r in rows if r.run in runs]))
    # What the runs themselves say about their numbers (e.g. CrowdPose's overlap with COCO val).
    for r in rows:
        for note in (runs[r.run].get("notes") or []) if r.run in runs else []:
            table.notes.append(f"Reproduced row {r.key}: {note}")
    return table


def _speed_note(used: list[dict]) -> str:
    setups = sorted({f"{t.get('device') or 'unknown device'}, batch {t.get('batch') or '?'}, "
                     f"{t.get('precision') or '?'}"
                     for t in ((m.get("throughput") or {}) for m in used) if t.get("images_per_s")})
    return "Reproduced speed measured on: " + ("; ".join(setups) if setups else "no measurement yet") + "."


def build_hyperparameter_table(ref: RefTable, hyper: dict, scale: str, synthetic: bool,
                               why_no_hyper: str | None = None) -> Table:
    """Table 1: the hyper-parameters actually used (params.yaml via the registry) beside the paper's."""
    rows = []
    for prow in ref.rows:
        used = hyper.get(prow.key)
        if used is None:
            why = why_no_hyper or f"params.yaml has no hyper-parameters for {prow.key}"
            rows.append(Row(prow.key, prow.label, False, _attributes(ref, prow),
                            _cells_missing(ref, prow, why), why_missing=why))
            continue
        cells = []
        for col in ref.columns:
            value = used.get(col.key)
            ok = value is not None and not isinstance(value, bool) and isinstance(value, (int, float))
            cells.append(Cell(float(value) if ok else None, prow.values[col.key],
                              None if ok else f"hyper-parameters of {prow.key} have no numeric {col.key!r}"))
        rows.append(Row(prow.key, prow.label, False, _attributes(ref, prow), cells))
    table = Table(ref.number, ref.title, ref.layout, ref.label_header, [a.header for a in ref.attributes],
                  list(ref.columns), rows, scale, synthetic)
    table.notes.append(f"Reproduced: the hyper-parameters in params.yaml at scale {scale!r}.")
    if ref.note:
        table.notes.append(f"Paper: {ref.note}")
    return table
