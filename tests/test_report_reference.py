"""The paper reference file: every transcribed number is checked against the paper's own text."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from vitpose.report.reference import REFERENCE_FILE, Reference, RefTable, load_reference
from vitpose.utils.errors import UserError

REPO = Path(__file__).resolve().parents[1]
PAPER = Path(os.environ.get("VITPOSE_PAPER_TEXT",
                            REPO.parent / "shared" / "paper" / "vitpose-neurips2022-final.txt"))

# The first line of each table's body in the paper text (tab-separated, as extracted).
ANCHORS = {1: "Model\tBatch Size", 2: "Backbone\tResNet-50", 3: "Pre-training Dataset\tDataset Volume",
           4: "\t224x224\t256x192", 5: "Full\tWindow\tShift", 6: "FFN\tMHSA\tMemory", 7: "COCO\tAIC\tMPII",
           8: "Heatmap\tToken\tTeacher", 9: "\t\tParams\tSpeed", 10: "Method\tBackbone\tAP"}
# The draft (submission) version's tables that hold rows the final version dropped; its Table 6 is our 7.
SUBMISSION = Path(os.environ.get("VITPOSE_SUBMISSION_TEXT", PAPER.parent / "vitpose-neurips2022-submission.txt"))
SUBMISSION_ANCHORS = {7: "COCO\tAIC\tMPII\tCrowdPose"}
LABELLED = {1, 3, 9, 10}          # tables whose first paper column is the row's name
NUMBER = re.compile(r"^(\d{1,3}(,\d{3})+|\d+(\.\d+)?|\d+(\.\d+)?e-?\d+)(\*?)$")
CHECK = {"\\checkmark", "✓"}


def _norm(label: str) -> str:
    """Compare names across the text's typesetting: 'MSPN ^{+†} [24]' == 'MSPN⁺† [24]'."""
    return re.sub(r"[\s^{}_]", "", label.replace("⁺", "+")).lower()


def _numbers(cells: list[str], split_slash: bool) -> list[tuple[float, str]]:
    """(value, footnote mark) for each numeric cell; Table 1 prints 'COCO/multi-dataset' pairs."""
    out = []
    for cell in cells:
        for part in (cell.split("/") if split_slash else [cell]):
            m = NUMBER.match(part.strip())
            if m:
                out.append((float(m.group(1).replace(",", "")), m.group(5)))
    return out


def table_body(text: str, number: int, anchors: dict | None = None) -> list[list[str]]:
    anchor = (anchors or ANCHORS)[number]
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(anchor)
              or (anchor.startswith("\t") and anchor in line)]
    assert len(starts) == 1, f"Table {number}: anchor {anchor!r} found {len(starts)} times"
    body = []
    for line in lines[starts[0]:]:
        if not line.strip():
            break
        body.append(line.split("\t"))
    return body


def submission_errors(ref: Reference, text: str) -> list[str]:
    """Rows taken from the submission draft (`source: submission`) against the draft's own table: the
    draft prints the same rows in the same order, plus the ones the final version dropped."""
    errors = []
    for n, table in ref.tables.items():
        if not any(r.source == "submission" for r in table.rows):
            continue
        body = table_body(text, n, SUBMISSION_ANCHORS)
        data = [cells for cells in body if _numbers(cells, False)]
        errors += _check_rows(table, data)
    return errors


def transcription_errors(ref: Reference, text: str) -> list[str]:
    """Every way the reference file disagrees with the paper text (empty when faithful)."""
    errors = []
    for n, table in ref.tables.items():
        table = dataclasses.replace(table, rows=[r for r in table.rows if r.source == "final"])
        body = table_body(text, n)
        data = [cells for cells in body if _numbers(cells, n == 1)]
        header = body[:body.index(data[0])] if data else body
        if table.layout == "transposed":
            errors += _check_transposed(table, header, data)
        else:
            errors += _check_rows(table, data)
    return errors


def _check_rows(table: RefTable, data: list[list[str]]) -> list[str]:
    n = table.number
    if len(data) != len(table.rows):
        return [f"Table {n}: paper has {len(data)} rows, reference {len(table.rows)}"]
    errors = []
    for cells, row in zip(data, table.rows):
        got = _numbers(cells, n == 1)
        want = [(row.values[c.key], row.marks.get(c.key, "")) for c in table.columns]
        if got != want:
            errors.append(f"Table {n} row {row.key}: paper {got}, reference {want}")
        if n in LABELLED and _norm(cells[0]) != _norm(row.label):
            errors.append(f"Table {n} row {row.key}: paper label {cells[0]!r}, reference {row.label!r}")
        stripped = [c.strip() for c in cells]
        for j, attr in enumerate(table.attributes):
            value = row.attributes[attr.key]
            if isinstance(value, bool):
                if (stripped[j] in CHECK) != value:  # check-mark columns lead the row in the paper
                    errors.append(f"Table {n} row {row.key}: {attr.key} check mark {stripped[j]!r} != {value}")
            elif str(value) not in stripped:
                errors.append(f"Table {n} row {row.key}: attribute {attr.key}={value!r} not in {stripped}")
    return errors


def _check_transposed(table: RefTable, header: list[list[str]], data: list[list[str]]) -> list[str]:
    """The paper's columns are our rows: one text line per metric, one cell per reference row."""
    n, errors = table.number, []
    if len(data) != len(table.columns):
        return [f"Table {n}: paper has {len(data)} metric lines, reference {len(table.columns)} columns"]
    for cells, col in zip(data, table.columns):
        if _norm(cells[0]) != _norm(col.header):
            errors.append(f"Table {n}: paper line {cells[0]!r} where the reference has column {col.header!r}")
        got = _numbers(cells[1:], False)
        want = [(r.values[col.key], r.marks.get(col.key, "")) for r in table.rows]
        if got != want:
            errors.append(f"Table {n} column {col.key}: paper {got}, reference {want}")
    names = [[] for _ in table.rows]
    for cells in header:  # e.g. "Backbone ResNet-50 _ ResNet-152 _" over "Decoder Classic Simple ..."
        last = ""
        for i, cell in enumerate(cells[1:1 + len(table.rows)]):
            last = cell.strip() or last
            names[i].append(last)
    for parts, row in zip(names, table.rows):
        if " ".join(parts).lower() != row.label.lower():
            errors.append(f"Table {n} row {row.key}: paper header {' '.join(parts)!r}, reference {row.label!r}")
    return errors


@pytest.fixture(scope="module")
def paper_text() -> str:
    if not PAPER.exists():
        pytest.skip(f"paper text not found at {PAPER} (set VITPOSE_PAPER_TEXT to its path)")
    return PAPER.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_reference()


def test_every_transcribed_number_is_in_the_right_place_of_the_paper(ref, paper_text):
    assert transcription_errors(ref, paper_text) == []
    counted = sum(len(t.columns) for t in ref.tables.values() for r in t.rows if r.source == "final")
    assert counted == 28 + 40 + 24 + 12 + 42 + 18 + 12 + 24 + 64 + 54  # every number of Tables 1-10


def test_rows_from_the_submission_draft_are_in_the_drafts_table(ref):
    if not SUBMISSION.exists():
        pytest.skip(f"submission text not found at {SUBMISSION} (set VITPOSE_SUBMISSION_TEXT)")
    draft = [r for t in ref.tables.values() for r in t.rows if r.source == "submission"]
    assert [r.key for r in draft] == ["coco+aic+mpii+crowdpose"]
    assert draft[0].values == {"AP": 77.5, "AP50": 91.2, "AR": 82.6, "AR50": 95.0}
    text = SUBMISSION.read_text(encoding="utf-8")
    assert submission_errors(ref, text) == []
    # The check can fail: a wrong draft number is found.
    t7 = ref.tables[7]
    bad_rows = [dataclasses.replace(r, values={**r.values, "AP": 77.4}) if r.source == "submission" else r
                for r in t7.rows]
    bad = dataclasses.replace(ref, tables={**ref.tables, 7: dataclasses.replace(t7, rows=bad_rows)})
    assert submission_errors(bad, text)


@pytest.mark.parametrize("table,row,column,value", [
    (5, "window", "AP", 66.5),                  # a wrong number
    (9, "vitpose-h", "images_per_s", 214.0),    # digits swapped
    (5, "full", "train_memory_MB", 36141.0),    # right number, footnote mark dropped
])
def test_the_transcription_check_catches_a_wrong_number(ref, paper_text, table, row, column, value):
    t = ref.tables[table]
    rows = []
    for r in t.rows:
        if r.key == row:
            marks = {} if (table, column) == (5, "train_memory_MB") else r.marks
            r = dataclasses.replace(r, values={**r.values, column: value}, marks=marks)
        rows.append(r)
    broken = dataclasses.replace(ref, tables={**ref.tables, table: dataclasses.replace(t, rows=rows)})
    errors = transcription_errors(broken, paper_text)
    assert len(errors) == 1 and f"Table {table} row {row}" in errors[0]


def test_the_transcription_check_catches_a_wrong_label_and_a_missing_row(ref, paper_text):
    t9 = ref.tables[9]
    relabelled = dataclasses.replace(t9, rows=[dataclasses.replace(t9.rows[0], label="SimpleBaseline [43]"),
                                               *t9.rows[1:]])
    assert transcription_errors(dataclasses.replace(ref, tables={**ref.tables, 9: relabelled}), paper_text)
    t2 = ref.tables[2]
    shorter = dataclasses.replace(t2, rows=t2.rows[:-1])
    assert transcription_errors(dataclasses.replace(ref, tables={**ref.tables, 2: shorter}), paper_text)


def _developing_row_keys() -> dict[int, set[str]]:
    text = (REPO / "docs" / "DEVELOPING.md").read_text(encoding="utf-8")
    section = text.split("## Table row keys", 1)[1].split("\n## ", 1)[0]
    keys = {}
    for chunk in section.split("\n- Table ")[1:]:
        number = int(re.match(r"\d+", chunk).group())
        keys[number] = {k for k in re.findall(r"`([^`]+)`", chunk) if k != "*"}
    return keys


def test_reproduced_rows_use_the_row_keys_of_developing_md(ref):
    contract = _developing_row_keys()
    assert set(contract) == set(range(1, 11))
    for n, table in ref.tables.items():
        ours = {r.key for r in table.rows if not r.cited}
        assert ours == contract[n], f"Table {n}"


def test_cited_rows_are_the_other_works(ref):
    t9, t10 = ref.tables[9], ref.tables[10]
    assert [r.cited for r in t9.rows] == [True] * 10 + [False] * 6
    assert [r.cited for r in t10.rows] == [True] * 7 + [False] * 2
    assert not any(r.cited for n in range(1, 9) for r in ref.tables[n].rows)
    assert ref.tables[10].test_dev and not ref.tables[9].test_dev


def test_figure1_points_are_table9(ref):
    points = ref.figure1_points()
    assert len(points) == 16
    b = next(p for p in points if p.label == "ViTPose-B")
    assert (b.images_per_s, b.AP, b.params_M, b.cited) == (944.0, 75.8, 86.0, False)
    assert sum(p.cited for p in points) == 10
    assert "A100" in ref.speed_device and ref.speed_batch == 64


def test_reference_file_is_labelled_as_the_papers_numbers():
    head = REFERENCE_FILE.read_text(encoding="utf-8")[:600]
    assert "THE PAPER'S NUMBERS" in head and "NOT REPRODUCED" in head


def test_bad_reference_files_name_the_file_and_key(tmp_path):
    bad = tmp_path / "ref.yaml"
    bad.write_text("schema: [unclosed\n")
    with pytest.raises(UserError, match=re.escape(str(bad))):
        load_reference(bad)
    text = REFERENCE_FILE.read_text(encoding="utf-8").replace("AP: 66.4,", "AP: sixty-six,", 1)
    bad.write_text(text)
    with pytest.raises(UserError, match=r"tables\.5\.rows\[1\]\.values\.AP: expected a finite number"):
        load_reference(bad)
    bad.write_text(REFERENCE_FILE.read_text(encoding="utf-8").replace("vitpose-paper-reference/1", "v0"))
    with pytest.raises(UserError, match="key 'schema'"):
        load_reference(bad)
