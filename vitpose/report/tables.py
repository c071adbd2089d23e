"""The table model: each paper table as rows x columns of (reproduced, paper, difference) cells.

`build_table` joins one reference table with the runs the plan assigns to its rows; the LaTeX and
Markdown writers only render the result. A reproduced cell is either a number read from a run's
metrics.json (or, for Table 1, the hyper-parameters in use) or None with the reason it is missing.
A row planned with several seeds (params.yaml `seeds`) shows the mean over the seeds whose runs
have a value, their sample standard deviation and their number n.

Differences (ours − paper) are shown only where they mean something: at a real-data scale. At a
synthetic scale the tables compare nothing with the paper and say so; the same/differs column of
hyper-parameters (Table 1) is shown at every scale, since it compares the settings actually used.

A table whose plan has entries with `"released": True` (Tables 2 and 9: the authors' released
checkpoints, evaluated here) shows a third value per compared column, "released", beside ours and the
paper's. A test-dev table (Table 10) has numbers only from the COCO server's scores (imported into
metrics.json); until then its notes give the COCO val AP of the same model(s), scored here
(`val_metrics.json` of the submission).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from vitpose.report.reference import RefColumn, RefTable
from vitpose.utils.errors import UserError

# metrics.json top-level numbers a column may name; anything else is a key of "metrics" (a fraction).
TOP_LEVEL_FIELDS = ("train_memory_MB", "gflops", "trainable_gflops", "params_M", "backbone_params_M",
                    "wall_time_s")
THROUGHPUT_FIELD = "images_per_s"
SIZE_FIELDS = (*TOP_LEVEL_FIELDS, THROUGHPUT_FIELD)  # columns that are not metrics
TEST_DEV_REASON = "COCO test-dev is scored only by the COCO server"


@dataclass
class Cell:
    """One compared column of one row; `why_missing` says why `ours` is None.

    `ours` is the mean over the row's seeds that have a value (n of them); `std` their sample
    standard deviation (None for n < 2)."""

    ours: float | None
    paper: float | None
    why_missing: str | None = None
    mark: str = ""  # the paper's footnote sign after its value ("*")
    std: float | None = None
    n: int = 0
    released: float | None = None  # the authors' released checkpoint, evaluated here (tables that show it)


@dataclass
class Row:
    key: str
    label: str
    cited: bool
    attributes: list[str | bool]
    cells: list[Cell]
    run: str | None = None
    why_missing: str | None = None  # why the whole row has no reproduced values
    runs: list[str] = field(default_factory=list)  # every seed's run with a metrics.json (run = runs[0])
    planned: int = 1                 # seeds planned for the row
    released_run: str | None = None  # the run evaluating the authors' released checkpoint of this row
    released_missing: str | None = None  # why that run has no values (yet)


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
    released: bool = False  # shows the released checkpoints' value beside ours and the paper's

    def shows_diff(self, col: RefColumn) -> bool:
        """Whether `col` gets a Δ column: same/differs always, ours − paper only at real-data scales."""
        return col.diff == "equality" or not self.synthetic

    @property
    def repeated(self) -> bool:
        """Whether any row is planned with several seeds (the tables then show n and ± std)."""
        return any(r.planned > 1 for r in self.rows)

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
        for row in self.rows:
            if row.released_missing is not None:
                out.append((row.key, "released", row.released_missing))
        return out

    def cell(self, row_key: str, column_key: str) -> Cell:
        for row in self.rows:
            if row.key == row_key:
                return row.cells[[c.key for c in self.columns].index(column_key)]
        raise KeyError(row_key)


# -- formatting (shared by the LaTeX and Markdown writers) ------------------------------------------
def format_value(col: RefColumn, value: float | None, ours: bool = False) -> str | None:
    """The value as the paper prints it (None stays None: each writer has its own dash).

    Metrics (AP, AR, PCKh) always have the paper's decimals. Reproduced sizes and speeds (parameters,
    GFLOPs, memory, images/s) keep at least two significant digits: a smoke-scale model of 0.3 M
    parameters must not print as "0" in a column the paper rounds to whole numbers.
    """
    if value is None:
        return None
    if (ours and col.key in SIZE_FIELDS and col.format != "sci" and value != 0
            and abs(value) < 10 ** (1 - col.decimals)):
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


def format_ours(col: RefColumn, cell: Cell) -> str | None:
    """The reproduced value as shown: the mean, with `± std` when several seeds gave one."""
    mean = format_value(col, cell.ours, ours=True)
    if mean is None or cell.std is None or col.diff == "equality":
        return mean
    decimals = len(mean.partition(".")[2])
    sep = "," if col.format == "thousands" else ""
    return f"{mean} ± {cell.std:{sep}.{decimals}f}"


def column_parts(table: Table, col: RefColumn) -> list[str]:
    """The values shown for one compared column: ours, (released,) paper (and Δ where shown)."""
    return ["ours", *(["released"] if table.released else []), "paper", *(["Δ"] if table.shows_diff(col) else [])]


def column_headers(table: Table) -> list[str]:
    """Headers of the compared cells: `<column> ours`, `<column> released` (tables showing the released
    checkpoints), `<column> paper` (and `<column> Δ` where shown)."""
    return [f"{col.header} {part}" for col in table.columns for part in column_parts(table, col)]


def cell_texts(table: Table, row: Row) -> list[str | None]:
    """A row's compared cells as shown, in `column_headers` order (None: not available; every writer
    has its own dash and escaping)."""
    out: list[str | None] = []
    for col, cell in zip(table.columns, row.cells):
        paper = format_value(col, cell.paper)
        texts = {"ours": format_ours(col, cell), "released": format_value(col, cell.released, ours=True),
                 "paper": None if paper is None else paper + cell.mark,
                 "Δ": format_diff(col, cell.ours, cell.paper)}
        out += [texts[part] for part in column_parts(table, col)]
    return out


def seeds_text(row: Row) -> str:
    """How many seeds a row's reproduced values average, of those planned (`2/3`); "" for cited rows."""
    if row.cited:
        return ""
    return f"{len(row.runs)}/{row.planned}" if row.planned > 1 else str(len(row.runs))


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


def _cells_from_metrics(ref: RefTable, paper_row, seeds: list[dict]) -> list[Cell]:
    """One cell per column over the row's seed runs (their metrics.json documents, at least one)."""
    cells = []
    for col in ref.columns:
        values, sources = [], []
        for metrics in seeds:
            value, source = reproduced_value(metrics, col.key)
            if value is not None:
                values.append(value)
            sources.append(source)
        why = None
        if not values:
            runs = ", ".join(m["run"] for m in seeds)
            why = f"metrics.json of run {runs} has no {sources[0]}"
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else None
        cells.append(Cell(mean, paper_row.values[col.key], why, paper_row.marks.get(col.key, ""),
                          std=std, n=len(values)))
    return cells


def _cells_missing(ref: RefTable, paper_row, why: str) -> list[Cell]:
    return [Cell(None, paper_row.values[c.key], why, paper_row.marks.get(c.key, "")) for c in ref.columns]


def _plan_rows(ref: RefTable, plan: list[dict], released: bool = False) -> dict[str, list[dict]]:
    """The plan's entries of this table by row: one per seed (the first seed's first); `released`: the
    released checkpoints' entries instead (one per row)."""
    entries: dict[str, list[dict]] = {}
    reproducible = [r.key for r in ref.rows if not r.cited]
    for entry in plan:
        if entry.get("table") != ref.number or bool(entry.get("released")) != released:
            continue
        row = entry.get("row")
        if row not in reproducible:
            raise UserError(f"plan: table {ref.number} row {row!r} (run {entry.get('run')!r}) is not a "
                            f"reproducible row of the paper's Table {ref.number}; expected one of "
                            f"{', '.join(reproducible)}")
        same = [e for e in entries.get(row, []) if e.get("seed") == entry.get("seed")]
        if same:
            seed = "" if entry.get("seed") is None else f" at seed {entry['seed']}"
            raise UserError(f"plan: table {ref.number} row {row!r} is assigned twice{seed} (runs "
                            f"{same[0].get('run')!r} and {entry.get('run')!r})")
        entries.setdefault(row, []).append(entry)
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


def _why_no_metrics(entry: dict | None, missing_plan_reason: str, test_dev: bool = False) -> str:
    """Why the run of a plan entry has no numbers."""
    run_id = entry.get("run") if entry else None
    if entry is None:
        return missing_plan_reason
    if entry.get("unavailable"):
        return f"run {run_id} cannot be produced: {entry['unavailable']}"
    if test_dev:
        return (f"run {run_id} has no imported server scores yet (upload its submission, then "
                f"`python -m stages.testdev_scores`: docs/VITPOSE_G.md)")
    return f"run {run_id} has no metrics.json yet (not run, or it failed)"


def _released_values(ref: RefTable, rows: list[Row], runs: dict[str, dict], plan: list[dict]) -> bool:
    """Fill the rows' released values from the released checkpoints' runs; whether the table shows them."""
    entries = _plan_rows(ref, plan, released=True)
    for row in rows:
        entry = (entries.get(row.key) or [None])[0]
        if entry is None:
            continue
        row.released_run = entry["run"]
        metrics = runs.get(entry["run"])
        if metrics is None:
            row.released_missing = _why_no_metrics(entry, "")
            if not entry.get("unavailable"):
                where = entry.get("checkpoint") or "its file"
                row.released_missing += (f": `snakemake released` evaluates the released checkpoint {where} "
                                         f"once it is in place (a manual download, docs/DATA.md)")
            continue
        for col, cell in zip(ref.columns, row.cells):
            cell.released = reproduced_value(metrics, col.key)[0]
    return bool(entries)


def build_table(ref: RefTable, runs: dict[str, dict], plan: list[dict], scale: str, synthetic: bool,
                missing_plan_reason: str = "no run is planned for this row",
                val_metrics: dict[str, dict] | None = None) -> Table:
    """Table N (2-10) from the reference, the plan's row -> run entries and the runs' metrics by id.

    val_metrics: a test-dev table's submissions' `val_metrics.json` by run id (their COCO val AP is
    noted for the rows the server has not scored yet)."""
    entries = _plan_rows(ref, plan)
    rows = []
    for prow in ref.rows:
        attrs = _attributes(ref, prow)
        if prow.cited:
            rows.append(Row(prow.key, prow.label, True, attrs,
                            _cells_missing(ref, prow, "cited by the paper from other work"),
                            why_missing="cited by the paper from other work"))
            continue
        seeds = entries.get(prow.key, [])
        done = [e["run"] for e in seeds if e.get("run") in runs]
        if done:
            attrs = _attributes(ref, prow, runs[done[0]])
            rows.append(Row(prow.key, prow.label, False, attrs,
                            _cells_from_metrics(ref, prow, [runs[r] for r in done]), run=done[0],
                            runs=done, planned=len(seeds)))
            continue
        entry = seeds[0] if seeds else None
        run_id = entry.get("run") if entry else None
        why = _why_no_metrics(entry, missing_plan_reason, ref.test_dev)
        if ref.test_dev:
            why = f"{TEST_DEV_REASON} ({why})"
        rows.append(Row(prow.key, prow.label, False, attrs, _cells_missing(ref, prow, why), run=run_id,
                        why_missing=why, planned=max(1, len(seeds))))
    table = Table(ref.number, ref.title, ref.layout, ref.label_header, [a.header for a in ref.attributes],
                  list(ref.columns), rows, scale, synthetic)
    table.released = _released_values(ref, rows, runs, plan)
    if ref.note:
        table.notes.append(f"Paper: {ref.note}")
    if table.released:
        used = [r.released_run for r in rows if r.released_run in runs]
        table.notes.append("Released: the authors' released checkpoints, evaluated here with the paper's protocol "
                           "(detected boxes, flip test, UDP): " + (", ".join(used) or "none evaluated yet") + ".")
    if table.repeated:
        table.notes.append("Reproduced: mean ± sample standard deviation over the n seeds whose runs "
                           "finished (params.yaml `seeds`); the paper reports single runs.")
    if any(c.key == THROUGHPUT_FIELD for c in ref.columns):
        table.notes.append(_speed_note([runs[run] for r in rows for run in r.runs]))
    # What the runs themselves say about their numbers (e.g. CrowdPose's overlap with COCO val).
    for r in rows:
        said = dict.fromkeys(note for run in r.runs for note in runs[run].get("notes") or [])
        table.notes += [f"Reproduced row {r.key}: {note}" for note in said]
        if r.released_run in runs:
            table.notes += [f"Released row {r.key}: {note}" for note in runs[r.released_run].get("notes") or []]
    if ref.test_dev:
        table.notes += _val_notes(rows, val_metrics or {})
    return table


def _val_notes(rows: list[Row], val_metrics: dict[str, dict]) -> list[str]:
    """The COCO val AP of a not yet scored submission's model(s), scored here (`val_metrics.json`); once
    the server's scores are imported, metrics.json's own notes say it."""
    out = []
    for r in rows:
        val = val_metrics.get(r.run) if not r.cited and not r.runs else None
        if val is None:
            continue
        ap = (val.get("metrics") or {}).get("AP")
        shown = "—" if ap is None else f"{100 * ap:.1f}"
        what = next((n for n in val.get("notes") or [] if n.startswith(("ensemble", "single"))), "")
        out.append(f"Reproduced row {r.key}: COCO val AP of the submitted model(s), scored by this code: {shown} "
                   f"(run {r.run}{'; ' + what if what else ''}); the test-dev cells wait for the COCO server")
    return out


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
