"""The paper's reference numbers (Tables 1-10, Figure 1), loaded from `paper_reference.yaml`.

The YAML file is the single transcription of the paper; this module only reads and checks its shape.
Nothing here is a reproduced value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vitpose.utils.errors import UserError

REFERENCE_FILE = Path(__file__).with_name("paper_reference.yaml")
SCHEMA = "vitpose-paper-reference/1"
LAYOUTS = ("rows", "transposed")
FORMATS = ("fixed", "thousands", "sci")
DIFFS = ("signed", "equality")


@dataclass(frozen=True)
class RefColumn:
    """A compared column: `key` names the metrics.json field (or hyper-parameter) reproducing it."""

    key: str
    header: str
    decimals: int = 1
    format: str = "fixed"
    diff: str = "signed"


@dataclass(frozen=True)
class RefAttribute:
    """A descriptive column (backbone, check marks, window size): shown, never compared."""

    key: str
    header: str
    # A metrics.json field (dotted) measured for the same attribute, shown beside the paper's value,
    # e.g. Table 3's dataset volume next to `pretraining.images` (the images our pre-training saw).
    ours: str | None = None


@dataclass(frozen=True)
class RefRow:
    key: str
    label: str
    cited: bool
    attributes: dict[str, str | bool]
    values: dict[str, float]
    marks: dict[str, str] = field(default_factory=dict)
    # Which version of the paper prints the row: the final one (canonical), or the submission draft
    # for rows the final version dropped (Table 7's COCO+AIC+MPII+CrowdPose); the table notes say so.
    source: str = "final"


@dataclass(frozen=True)
class RefTable:
    number: int
    title: str
    layout: str
    label_header: str
    attributes: list[RefAttribute]
    columns: list[RefColumn]
    rows: list[RefRow]
    note: str | None = None
    test_dev: bool = False

    def row(self, key: str) -> RefRow:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    @property
    def row_keys(self) -> list[str]:
        return [r.key for r in self.rows]


@dataclass(frozen=True)
class FigurePoint:
    """One bubble of Figure 1: x = throughput (fps), y = AP (x100), size = parameters (M)."""

    label: str
    images_per_s: float
    AP: float
    params_M: float
    cited: bool


@dataclass(frozen=True)
class Reference:
    source: str
    speed_device: str
    speed_batch: int
    tables: dict[int, RefTable]
    figure1: dict[str, object]
    path: Path
    # The released training log's val AP per epoch ({label, table, row, points: [[epoch, AP]]}); not
    # the paper's numbers: drawn beside the reproduced training curve of that row's run.
    released_curve: dict | None = None

    def figure1_points(self) -> list[FigurePoint]:
        """Figure 1's paper points, read from the table it plots (Table 9), so nothing is typed twice."""
        table = self.tables[int(self.figure1["table"])]
        x, y, s = (str(self.figure1[k]) for k in ("x", "y", "size"))
        return [FigurePoint(r.label, r.values[x], r.values[y], r.values[s], r.cited) for r in table.rows]


def _need(obj: dict, key: str, where: str, path: Path):
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{path}: {where}: missing key {key!r}")
    return obj[key]


def _number(value, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{path}: {where}: expected a finite number, got {value!r}")
    return float(value)


SOURCES = ("final", "submission")


def _parse_table(number: int, raw: dict, path: Path) -> RefTable:
    where = f"tables.{number}"
    layout = raw.get("layout", "rows")
    if layout not in LAYOUTS:
        raise UserError(f"{path}: {where}.layout: expected one of {LAYOUTS}, got {layout!r}")
    attributes = [RefAttribute(str(a["key"]), str(a["header"]), a.get("ours")) for a in raw.get("attributes") or []]
    columns = []
    for i, c in enumerate(_need(raw, "columns", where, path)):
        col = RefColumn(key=str(_need(c, "key", f"{where}.columns[{i}]", path)),
                        header=str(_need(c, "header", f"{where}.columns[{i}]", path)),
                        decimals=int(c.get("decimals", 1)), format=c.get("format", "fixed"),
                        diff=c.get("diff", "signed"))
        if col.format not in FORMATS or col.diff not in DIFFS:
            raise UserError(f"{path}: {where}.columns[{i}]: format must be one of {FORMATS} and diff "
                            f"one of {DIFFS}, got {col.format!r}, {col.diff!r}")
        columns.append(col)
    col_keys = {c.key for c in columns}
    attr_keys = {a.key for a in attributes}
    rows, seen = [], set()
    for i, r in enumerate(_need(raw, "rows", where, path)):
        rwhere = f"{where}.rows[{i}]"
        key = str(_need(r, "key", rwhere, path))
        if key in seen:
            raise UserError(f"{path}: {rwhere}: duplicate row key {key!r}")
        seen.add(key)
        values = {k: _number(v, f"{rwhere}.values.{k}", path) for k, v in (r.get("values") or {}).items()}
        attrs = dict(r.get("attributes") or {})
        if set(values) != col_keys:
            raise UserError(f"{path}: {rwhere} ({key}): values must cover exactly the columns "
                            f"{sorted(col_keys)}, got {sorted(values)}")
        if set(attrs) != attr_keys:
            raise UserError(f"{path}: {rwhere} ({key}): attributes must be exactly {sorted(attr_keys)}, "
                            f"got {sorted(attrs)}")
        marks = {str(k): str(v) for k, v in (r.get("marks") or {}).items()}
        if not set(marks) <= col_keys:
            raise UserError(f"{path}: {rwhere} ({key}): marks name unknown columns "
                            f"{sorted(set(marks) - col_keys)}")
        source = str(r.get("source", "final"))
        if source not in SOURCES:
            raise UserError(f"{path}: {rwhere} ({key}): source: expected one of {SOURCES}, got {source!r}")
        rows.append(RefRow(key, str(_need(r, "label", rwhere, path)), bool(r.get("cited", False)),
                           attrs, values, marks, source))
    return RefTable(number, str(_need(raw, "title", where, path)), layout,
                    str(raw.get("label_header", "")), attributes, columns, rows,
                    raw.get("note"), bool(raw.get("test_dev", False)))


def load_reference(path: str | Path | None = None) -> Reference:
    """Load and check the paper's reference numbers (default: the packaged `paper_reference.yaml`)."""
    path = Path(path) if path is not None else REFERENCE_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the paper reference file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise UserError(f"{path}: key 'schema': expected {SCHEMA!r}, got {got!r}")
    raw_tables = _need(raw, "tables", "top level", path)
    tables = {int(n): _parse_table(int(n), t, path) for n, t in raw_tables.items()}
    missing = sorted(set(range(1, 11)) - set(tables))
    if missing:
        raise UserError(f"{path}: tables: expected Tables 1-10, missing {missing}")
    fig = dict(_need(raw, "figure1", "top level", path))
    fig_table = tables.get(int(fig.get("table", 0)))
    plotted = {fig.get("x"), fig.get("y"), fig.get("size")}
    if fig_table is None or not plotted <= {c.key for c in fig_table.columns}:
        raise UserError(f"{path}: figure1: expected a table number and x, y, size naming its columns, got {fig}")
    curve = raw.get("released_curve")
    if curve is not None:
        where = "released_curve"
        table = tables.get(int(_need(curve, "table", where, path)))
        if table is None or _need(curve, "row", where, path) not in table.row_keys:
            raise UserError(f"{path}: {where}: table {curve.get('table')!r} has no row {curve.get('row')!r}")
        points = _need(curve, "points", where, path)
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise UserError(f"{path}: {where}.points: expected a list of [epoch, AP] pairs, got {points!r}")
        curve = {"label": str(_need(curve, "label", where, path)), "table": table.number, "row": curve["row"],
                 "points": [(_number(e, f"{where}.points", path), _number(a, f"{where}.points", path))
                            for e, a in points]}
    return Reference(str(raw.get("source", "")), str(raw.get("speed_device", "")),
                     int(raw.get("speed_batch", 0)), dict(sorted(tables.items())), fig, path, curve)
