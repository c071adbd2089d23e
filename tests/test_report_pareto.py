"""Figure 1: the plotted points are read back from the Figure's artists and from the PNG metadata."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection

from vitpose.report import pareto
from vitpose.report.build import build_report
from vitpose.report.reference import load_reference
from vitpose.report.tables import build_table

REF = load_reference()


def doc(run: str, row: str, ap: float, fps: float, params: float, device: str = "cpu (2 cores)") -> dict:
    return {"schema": "vitpose-metrics/1", "run": run, "scale": "smoke", "synthetic": True,
            "serves": [{"table": 9, "row": row}], "metrics": {"AP": ap, "AR": ap + 0.05},
            "backbone_params_M": params, "params_M": params + 0.1,
            "throughput": {"images_per_s": fps, "device": device, "batch": 8, "precision": "fp32"}}


def scatter(fig, gid: str) -> PathCollection:
    found = [c for ax in fig.axes for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, f"expected one scatter with gid {gid!r}"
    return found[0]


def line(fig, gid: str):
    return next(ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == gid)


def test_pareto_front_keeps_only_undominated_points():
    P = pareto.Point
    pts = [P("a", 100, 70, 1), P("b", 50, 80, 1), P("c", 40, 75, 1), P("d", 100, 65, 1), P("e", 10, 80, 1)]
    assert [p.label for p in pareto.pareto_front(pts)] == ["b", "a"]
    assert pareto.pareto_front([]) == []


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    metrics = [doc("b", "vitpose-b", 0.612, 120.0, 0.27), doc("l", "vitpose-l", 0.655, 45.0, 0.9),
               doc("h", "vitpose-h", 0.601, 20.0, 2.4)]
    plan = [{"table": 9, "row": r, "run": m["run"], "unavailable": None}
            for r, m in zip(["vitpose-b", "vitpose-l", "vitpose-h"], metrics)]
    plan.append({"table": 9, "row": "vitpose-b*", "run": "bstar", "unavailable": "needs multi_dataset"})
    out = tmp_path_factory.mktemp("pt") / "smoke"
    return build_report(metrics, plan, {}, REF, "smoke", out, compile_latex=False, progress=False, commit="x")


def test_paper_points_are_table9(report):
    fig = report.figure
    paper = scatter(fig, "paper")
    expected = [(p.images_per_s, p.AP) for p in REF.figure1_points()]
    np.testing.assert_allclose(paper.get_offsets(), expected)
    params = np.array([p.params_M for p in REF.figure1_points()])
    sizes = paper.get_sizes()
    np.testing.assert_allclose(sizes / params, sizes[0] / params[0])  # area proportional to parameters
    assert sizes.max() == pytest.approx(pareto.MAX_AREA)
    front = line(fig, "paper-front")
    assert list(front.get_xdata()) == [241.0, 411.0, 944.0]  # ViTPose-H*, L*, B*
    assert list(front.get_ydata()) == [79.5, 78.7, 77.1]


def test_reproduced_points_come_from_table9_runs(report):
    fig = report.figure
    ours = scatter(fig, "reproduced")
    np.testing.assert_allclose(ours.get_offsets(), [(120.0, 61.2), (45.0, 65.5), (20.0, 60.1)])
    # Synthetic: the reproduced points have a panel and a bubble scale of their own (largest = MAX_AREA)
    np.testing.assert_allclose(ours.get_sizes(), [pareto.MAX_AREA * v / 2.4 for v in (0.27, 0.9, 2.4)])
    assert ours.axes is not scatter(fig, "paper").axes
    front = line(fig, "reproduced-front")
    assert list(front.get_xdata()) == [45.0, 120.0]  # ViTPose-H (20 fps, 60.1) is dominated by L
    index = (report.out_dir / "index.md").read_text(encoding="utf-8")
    assert "vitpose-b\\* not plotted: run bstar cannot be produced: needs multi\\_dataset" in index


def test_paper_and_reproduced_are_distinguished_and_devices_named(report):
    fig = report.figure
    paper, ours = scatter(fig, "paper"), scatter(fig, "reproduced")
    assert not np.allclose(paper.get_facecolor()[0], ours.get_facecolor()[0])
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("paper (NVIDIA A100, batch 64)") for lab in labels)
    assert any("reproduced" in lab and "cpu (2 cores)" in lab for lab in labels)
    assert "NVIDIA A100" in paper.axes.get_xlabel() and "cpu (2 cores)" in ours.axes.get_xlabel()
    assert "synthetic data, not a reproduction" in fig.get_suptitle()
    assert "own axes" in ours.axes.get_title()


def test_png_metadata_holds_the_same_points(report):
    data = pareto.read_png_data(report.out_dir / "figure1_pareto.png")
    assert data == report.figure_data
    assert [(p["fps"], p["AP"], p["params_M"]) for p in data["reproduced"]] == [
        (120.0, pytest.approx(61.2), 0.27), (45.0, pytest.approx(65.5), 0.9), (20.0, pytest.approx(60.1), 2.4)]
    assert data["reproduced_front"] == ["ViTPose-L", "ViTPose-B"]
    assert data["paper_front"] == ["ViTPose-H*", "ViTPose-L*", "ViTPose-B*"]
    assert data["synthetic"] is True and data["reproduced_device"] == "cpu (2 cores)"
    assert (report.out_dir / "figure1_pareto.pdf").read_bytes()[:5] == b"%PDF-"


def test_real_scale_figure_has_no_smoke_banner_and_says_when_nothing_is_reproduced():
    t9 = build_table(REF.tables[9], {}, [], "paper", False)
    paper = pareto.points_from_table(t9, "images_per_s", "AP", "backbone_params_M", reproduced=False)
    fig = pareto.pareto_figure(paper, [], paper_device="NVIDIA A100, batch 64", our_device="no measurement",
                               scale="paper", synthetic=False)
    ax = fig.axes[0]
    assert "synthetic" not in ax.get_title()
    assert not [c for c in ax.collections if c.get_gid() == "reproduced"]
    assert any("no reproduced point" in t.get_text() for t in ax.texts)
