"""The shared look of every figure: a fixed style, colours per objective, deterministic PNG/PDF output (no
timestamps), the placeholder note a figure draws when the grid lacks its pieces, and error bars over seeds."""

from __future__ import annotations

import functools
import math
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from margin_retrieval.jobs.io import atomic_path  # noqa: E402

PathLike = str | os.PathLike
SCORE_UNIT = "cosine-similarity difference"
STYLE = {
    "figure.dpi": 100, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "legend.fontsize": 7.5, "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.6, "lines.markersize": 5,
    "axes.spines.top": False, "axes.spines.right": False, "figure.constrained_layout.use": True,
    "pdf.fonttype": 42, "svg.hashsalt": "margin-retrieval", "path.simplify": False,
}
COLORS = {
    ("static", "false"): "#1f77b4", ("static", "true"): "#17becf", ("static", "textbook"): "#9467bd",
    ("adaptive", "false"): "#ff7f0e", ("adaptive", "true"): "#d62728", ("adaptive", "textbook"): "#8c564b",
    ("distributed", "false"): "#2ca02c", ("margin_mse", "false"): "#000000", ("infonce", "false"): "#7f7f7f",
}
ZEROSHOT_COLORS = ("#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8")


def styled(function):
    """Run a figure function under the fixed style (artists read rcParams when they are created)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.style.context("default"), matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def new_figure(ncols: int = 1, width: float = 5.5, height: float = 3.6, nrows: int = 1, **kwargs):
    """A figure and its axes as a flat list, row by row."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kwargs)
    return fig, list(axes.flat)


def save_figure(fig, png: PathLike, pdf: PathLike) -> None:
    """Write both formats atomically and without timestamps, then close the figure."""
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    finally:
        plt.close(fig)


def placeholder(ax, message: str, y: float = 0.5) -> None:
    """A boxed note in the middle of the axes: what this configuration lacks for the figure."""
    ax.text(0.5, y, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#555555",
            wrap=True, bbox={"boxstyle": "round", "facecolor": "#f4f4f4", "edgecolor": "#bbbbbb"})


def color(objective: str, in_batch: str = "false") -> str:
    return COLORS.get((objective, in_batch or "false"), "#7f7f7f")


def percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def half_widths(rows) -> list[float] | None:
    """Error-bar half-widths of aggregated rows (``half_width``; 0 for one seed); None when no row has several
    seeds, so single-seed figures draw no bars at all."""
    if "half_width" not in rows or rows["half_width"].isna().all():
        return None
    return [0.0 if math.isnan(h) else float(h) for h in rows["half_width"]]


def seed_note(rows) -> str:
    """A legend suffix naming the interval when some system has several seeds."""
    if "n_seeds" in rows and len(rows) and rows["n_seeds"].max() > 1:
        return f" (mean of ≤{int(rows['n_seeds'].max())} seeds, 95% CI)"
    return ""
