"""Markdown rendering of a Table: the same rows, columns and notes as its LaTeX twin."""
from __future__ import annotations

from vitpose.report.tables import Row, Table, cell_texts, column_headers, seeds_text

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
    cells = [table.label_header, *table.attribute_headers] + (["n"] if table.repeated else [])
    return [escape(c) for c in cells + column_headers(table)]


def row_cells(table: Table, row: Row) -> list[str]:
    cells = [escape(row.label) + (" *(cited)*" if row.cited else "")]
    cells += [_attribute(a) for a in row.attributes]
    cells += [seeds_text(row)] if table.repeated else []
    return cells + [_cell(text) for text in cell_texts(table, row)]


def legend(table: Table, dash: str = DASH) -> str:
    """The sentence under a table's title that says what its columns mean."""
    diff = ("Δ = ours − paper" if not table.synthetic
            else "no difference column: synthetic numbers are not compared with the paper's")
    if table.synthetic and all(c.diff == "equality" for c in table.columns):
        diff = "Δ: whether the setting used here is the paper's"
    seeds = " ours = mean ± std over n seeds." if table.repeated else ""
    released = ("released = the authors' released checkpoint evaluated here, " if table.released else "")
    return (f"ours = reproduced here, {released}paper = the paper's value, {diff}; "
            f"{dash} = not available (reasons below).{seeds}"
            + (" The paper prints this table transposed." if table.layout == "transposed" else ""))


def table_to_markdown(table: Table) -> str:
    lines = [f"# Table {table.number}: {table.title}", ""]
    if table.synthetic:
        lines += [f"> {SYNTHETIC_BANNER}", ""]
    lines += [f"Scale `{table.scale}`. " + legend(table), ""]
    head = header_cells(table)
    n_left = 1 + len(table.attribute_headers) + (1 if table.repeated else 0)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * n_left + ["---:"] * (len(head) - n_left)) + "|")
    lines += ["| " + " | ".join(row_cells(table, row)) + " |" for row in table.rows]
    if table.notes:
        lines += ["", "Notes:", ""] + [f"- {escape(n)}" for n in table.notes]
    missing = table.missing()
    if missing:
        lines += ["", "Missing reproduced values:", ""]
        lines += [f"- `{key}`{'' if col is None else ' / ' + escape(col)}: {escape(why)}"
                  for key, col, why in missing]
    return "\n".join(lines) + "\n"
