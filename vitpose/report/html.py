"""`index.html`: the report as one static page (no server, no script): every table rendered with
ours beside the paper's, the figures, links to the Markdown / LaTeX files and the PDF, what is missing
and why, and the runs read. The same content as `index.md`, for a browser.
"""
from __future__ import annotations

from html import escape

from vitpose.report.index import IndexInfo
from vitpose.report.markdown import legend
from vitpose.report.tables import Table, cell_texts, column_headers, seeds_text

DASH = "—"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
.banner { background: #fde8e8; border: 2px solid #b00; color: #700; padding: .6em 1em; font-weight: bold; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ours { background: #eef6ff; }
td.missing { color: #999; }
section { margin-bottom: 2em; }
img { max-width: 100%; border: 1px solid #ddd; }
.notes { font-size: 12px; color: #444; }
nav a { margin-right: .8em; }
"""


def _attribute(value: str | bool) -> str:
    if value is True:
        return "✓"
    return "" if value is False else escape(str(value))


def table_html(table: Table) -> str:
    """One paper table as an HTML table (id `table<N>`), with its legend, notes and missing values."""
    headers = [table.label_header, *table.attribute_headers] + (["n"] if table.repeated else [])
    compared = column_headers(table)
    out = [f'<section id="table{table.number}">', f"<h2>Table {table.number}: {escape(table.title)}</h2>"]
    if table.synthetic:
        out.append('<p class="banner">SMOKE SCALE: synthetic data, not a reproduction.</p>')
    out.append(f"<p>Scale <code>{escape(table.scale)}</code>. {escape(legend(table))}</p>")
    out.append(f'<table class="paper-table" id="table{table.number}-data"><thead><tr>')
    out += [f"<th>{escape(h)}</th>" for h in headers + compared]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        cells = [f"<td>{escape(row.label)}{' <em>(cited)</em>' if row.cited else ''}</td>"]
        cells += [f"<td>{_attribute(a)}</td>" for a in row.attributes]
        cells += [f"<td>{seeds_text(row)}</td>"] if table.repeated else []
        for header, text in zip(compared, cell_texts(table, row)):
            kind = next((k for k in ("ours", "released") if header.endswith(f" {k}")), "")
            if text is None:
                cells.append(f'<td class="num missing {kind}">{DASH}</td>')
            else:
                cells.append(f'<td class="num {kind}">{escape(text)}</td>')
        out.append(f'<tr data-row="{escape(row.key)}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    notes = [escape(n) for n in table.notes]
    notes += [f"<code>{escape(key)}</code>{'' if col is None else ' / ' + escape(col)}: {escape(why)}"
              for key, col, why in table.missing()]
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")
    out.append(f'<p>Files: <a href="table{table.number}.md">table{table.number}.md</a> · '
               f'<a href="table{table.number}.tex">table{table.number}.tex</a></p>')
    out.append("</section>")
    return "\n".join(out)


def _run_row(m: dict) -> str:
    serves = ", ".join(f"T{s['table']} {s['row']}" for s in m["serves"]) or DASH
    return (f"<tr><td><code>{escape(m['run'])}</code></td><td>{escape(serves)}</td>"
            f"<td>{'yes' if m['synthetic'] else 'no'}</td><td>{escape(m.get('git_commit') or DASH)}</td>"
            f"<td>{escape((m.get('config_hash') or DASH)[:12])}</td></tr>")


def index_html(info: IndexInfo, tables: list[Table], metrics: list[dict], unused_runs: list[str],
               figures: list[tuple[str, str, str]], pdf_built: bool) -> str:
    """The whole page. figures: (section id, title, image file) in the order shown."""
    title = f"ViTPose reproduction: paper tables ({info.scale} scale)"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(title)}</title>",
           f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    if info.synthetic:
        out.append('<p class="banner">SMOKE SCALE: every number here comes from synthetic data and tiny '
                   "stand-in models. This is a test of the pipeline, not a reproduction of the paper.</p>")
    out.append("<ul>"
               f"<li>Scale: <code>{escape(info.scale)}</code></li>"
               f"<li>Generated: {escape(info.date)}</li>"
               f"<li>Git commit: {escape(info.git_commit or 'unknown')}</li>"
               f"<li>Row → run plan: {escape(info.plan_source)}</li>"
               "<li>Paper values: <code>vitpose/report/paper_reference.yaml</code>, transcribed from the final "
               "NeurIPS 2022 version of the paper.</li>"
               "<li>All tables as one PDF: "
               + ('<a href="tables.pdf">tables.pdf</a>' if pdf_built else escape(info.pdf_status)) + "</li>"
               "</ul>")
    links = [f'<a href="#table{t.number}">Table {t.number}</a>' for t in tables]
    links += [f'<a href="#{sid}">{escape(name)}</a>' for sid, name, _ in figures]
    links += ['<a href="#missing">missing</a>', '<a href="#runs">runs</a>']
    out.append("<nav>" + " ".join(links) + "</nav>")
    out += [table_html(t) for t in tables]
    for sid, name, image in figures:
        out.append(f'<section id="{sid}"><h2>{escape(name)}</h2>'
                   f'<a href="{escape(image)}"><img src="{escape(image)}" alt="{escape(name)}"></a>')
        if sid == "figure1":
            out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in info.figure_notes)
                       + "</ul>")
        out.append("</section>")
    gaps = [f"<li>Table {t.number} <code>{escape(key)}</code>{'' if col is None else ' / ' + escape(col)}: "
            f"{escape(why)}</li>" for t in tables for key, col, why in t.missing()]
    out.append('<section id="missing"><h2>Missing runs and values</h2>'
               + (f"<ul>{''.join(gaps)}</ul>" if gaps else "<p>Nothing is missing.</p>") + "</section>")
    rows = "".join(_run_row(m) for m in sorted(metrics, key=lambda m: m["run"]))
    out.append('<section id="runs"><h2>Runs read</h2><table><thead><tr><th>run</th><th>serves</th>'
               f"<th>synthetic</th><th>git commit</th><th>config hash</th></tr></thead><tbody>{rows}</tbody>"
               "</table>"
               + (f"<p>Runs with a metrics.json that no table row uses: {escape(', '.join(unused_runs))}</p>"
                  if unused_runs else "") + "</section>")
    if info.extra_notes:
        out.append('<section id="notes"><h2>Notes</h2><ul>'
                   + "".join(f"<li>{escape(n)}</li>" for n in info.extra_notes) + "</ul></section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
