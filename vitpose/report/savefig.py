"""Saving one figure as both PNG and PDF, its layout solved once."""
from __future__ import annotations

import os

from matplotlib.figure import Figure


def save_png_and_pdf(fig: Figure, png: str | os.PathLike, pdf: str | os.PathLike,
                     png_kwargs: dict | None = None, pdf_kwargs: dict | None = None) -> None:
    """Save ``fig`` as PNG, then as PDF with the layout that drawing the PNG solved.

    A constrained-layout figure solves its layout again on every draw; for the report's many-panel
    training-curve figures that solve is about half of the drawing time (profiled), and it gives the
    same positions for both files (they are figure-relative, text sizes are in points).
    """
    fig.savefig(png, format="png", **(png_kwargs or {}))
    engine = fig.get_layout_engine()
    try:
        fig.set_layout_engine("none")
    except RuntimeError:  # an engine that cannot be switched off (colorbars laid out by it): solve again
        engine = None
    try:
        fig.savefig(pdf, format="pdf", **(pdf_kwargs or {}))
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)
