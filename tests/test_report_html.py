"""`index.html`, rendered by a real browser (Debian's Chromium, headless): every table is there with the
paper's rows, ours beside the paper's values, the figures and the files it links exist, and what is
missing says why."""
from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import ensure_tool
from vitpose.report.build import build_report
from vitpose.report.reference import load_reference

REF = load_reference()
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (the tests run as root)."""
    return ensure_tool("chromium", ["chromium"])


def doc(run: str, serves: list[tuple[int, str]], ap: float = 0.4123) -> dict:
    return {"schema": "vitpose-metrics/1", "run": run, "scale": "smoke", "synthetic": True,
            "serves": [{"table": t, "row": r} for t, r in serves],
            "config": {"train": {"epochs": 16}},
            "metrics": {"AP": ap, "AP50": 0.8, "AP75": 0.4, "APM": 0.3, "APL": 0.5, "AR": 0.5, "AR50": 0.9},
            "params_M": 0.31, "backbone_params_M": 0.27, "gflops": 0.05, "trainable_gflops": 0.05,
            "train_memory_MB": 300.0,
            "throughput": {"images_per_s": 88.0, "device": "cpu", "batch": 4, "precision": "fp32"}}


class Tables(HTMLParser):
    """Rows (`data-row`) and cells of each `table#tableN-data` of a rendered DOM, and the <img> sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._table = self._row = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and (a.get("id") or "").endswith("-data"):
            self._table = a["id"][:-len("-data")]
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "data-row" in a:
            self._row = (a["data-row"], [])
            self.tables[self._table].append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "a" and a.get("href") and not a["href"].startswith("#"):
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    chromium = ensure_chromium()
    metrics = [doc("base", [(2, "vitpose-b/classic"), (4, "256x192"), (6, "none"), (9, "vitpose-b")]),
               doc("win", [(5, "window")], ap=0.3512)]
    plan = [{"table": s["table"], "row": s["row"], "run": m["run"], "seed": 0, "unavailable": None}
            for m in metrics for s in m["serves"]]
    plan.append({"table": 8, "row": "token", "run": "kd", "seed": 0, "unavailable": "needs <distillation> & more"})
    curve = [{"iter": float(i), "epoch": float(i // 10), "loss": 0.01 / (1 + i), "lr": 1e-3} for i in range(1, 40)]
    curve.append({"iter": 20.0, "epoch": 7.0, "val_AP": 0.2})
    out = tmp_path_factory.mktemp("html") / "smoke"
    result = build_report(metrics, plan, {}, REF, "smoke", out, progress=False, compile_latex=False,
                          commit="abc123", curves={"base": curve, "win": curve})
    page = out / "index.html"
    profile = tmp_path_factory.mktemp("chromium-profile")
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0 and "<table" in dom.stdout, dom.stderr[-2000:]
    shot = out.parent / "page.png"
    subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1400,3000", page.as_uri()], capture_output=True, text=True, timeout=120)
    parser = Tables()
    parser.feed(dom.stdout)
    return result, parser, dom.stdout, shot


def test_every_table_is_rendered_with_the_papers_rows(rendered):
    result, parsed, _, _ = rendered
    assert sorted(parsed.tables, key=lambda k: int(k[5:])) == [f"table{n}" for n in range(1, 11)]
    for n in range(1, 11):
        assert [key for key, _ in parsed.tables[f"table{n}"]] == REF.tables[n].row_keys


def test_ours_is_beside_the_papers_value_and_gaps_say_why(rendered):
    _, parsed, dom, _ = rendered
    window = dict(parsed.tables["table5"])["window"]
    # attributes (full, window, shift, pool, size), then ours and paper per column: AP 35.1 beside 66.4
    assert "35.1" in window and window[window.index("35.1") + 1] == "66.4"
    full = dict(parsed.tables["table5"])["full"]
    assert "—" in full  # no run: a dash ...
    assert "needs &lt;distillation&gt; &amp; more" in dom  # ... and the reason, escaped
    assert "SMOKE SCALE" in dom


def test_figures_and_linked_files_exist(rendered):
    result, parsed, _, shot = rendered
    out = result.out_dir
    assert "figure1_pareto.png" in parsed.images and "curves_table2.png" in parsed.images
    assert "val_ap.png" in parsed.images  # the curves carry a validation point
    for name in parsed.images + [h for h in parsed.links if not re.match(r"\w+://", h)]:
        if name == "tables.pdf":
            continue  # not compiled in this test (compile_latex=False): not linked either
        assert (out / name).is_file(), name
    assert "tables.pdf" not in parsed.links
    assert shot.is_file() and shot.stat().st_size > 20_000  # the browser drew the page


def test_index_md_links_the_page_and_the_curves(rendered):
    result, _, _, _ = rendered
    md = (result.out_dir / "index.md").read_text()
    assert "[index.html](index.html)" in md and "[curves_table5.png](curves_table5.png)" in md
    assert "index.html" in result.files and "curves_table5.pdf" in result.files
