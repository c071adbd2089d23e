"""Markdown rendering of a Table: the same rows, columns and notes as its LaTeX twin."""
from __future__ import annotations

from vitpose.report.tables import Row, Table, format_diff, format_value

DASH = "—"
CHECK = "✓"
SYNTHETIC_BANNER = "**SMOKE SCALE: synthetic data, not a reproduction.**"


def escape(text: str) -> str:
    """Keep labels such as `ViTPose-B*` or `a|b` literal in a pipe table."""
    return "".join("\\" + ch if ch in "\\*_|`[]" else ch for ch in str(text))


def _cell(text: str | None) -> str:
    return DASH if text is None else escape(text)


def _attribute(value: str | bool) -> str:
    if value is True:
        return CHECK
    if value is False:
        return ""
    return escape(value)


def header_cells(table: Table) -> list[str]:
    cells = [table.label_header, *table.attribute_headers]
    for col in table.columns:
        cells += [f"{col.header} ours", f"{col.header} paper", f"{col.header} Δ"]
    return [escape(c) for c in cells]


def row_cells(table: Table, row: Row) -> list[str]:
    cells = [escape(row.label) + (" *(cited)*" if row.cited else "")]
    cells += [_attribute(a) for a in row.attributes]
    for col, cell in zip(table.columns, row.cells):
        paper = _cell(format_value(col, cell.paper)) + escape(cell.mark)
        ours = format_value(col, cell.ours, ours=True)
        cells += [_cell(ours), paper, _cell(format_diff(col, cell.ours, cell.paper))]
    return cells


def table_to_markdown(table: Table) -> str:
    lines = [f"# Table {table.number}: {table.title}", ""]
    if table.synthetic:
        lines += [f"> {SYNTHETIC_BANNER}", ""]
    lines += [f"Scale `{table.scale}`. ours = reproduced here, paper = the paper's value, "
              f"Δ = ours − paper; {DASH} = not available (reasons below)."
              + (" The paper prints this table transposed." if table.layout == "transposed" else ""), ""]
    head = header_cells(table)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * (1 + len(table.attribute_headers))
                                + ["---:"] * (3 * len(table.columns))) + "|")
    lines += ["| " + " | ".join(row_cells(table, row)) + " |" for row in table.rows]
    if table.notes:
        lines += ["", "Notes:", ""] + [f"- {escape(n)}" for n in table.notes]
    missing = table.missing()
    if missing:
        lines += ["", "Missing reproduced values:", ""]
        lines += [f"- `{key}`{'' if col is None else ' / ' + escape(col)}: {escape(why)}"
                  for key, col, why in missing]
    return "\n".join(lines) + "\n"
