"""Test effectiveness vs the static margin τ (one line per in-batch setting), with the self-distilled objectives
and Margin-MSE at full data as horizontal reference lines; a reference with several seeds gets its 95% interval as an
error bar at the right edge (full-width bands of several references would cover the plot)."""

from __future__ import annotations

from typing import Mapping

import pandas as pd
from matplotlib.ticker import FixedLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from margin_retrieval.analysis.figures.style import (
    SCORE_UNIT, PathLike, color, half_widths, new_figure, placeholder, save_figure, seed_note, styled,
)
from margin_retrieval.analysis.numbers.effectiveness import collection_of, default_setting, full_data, variant_rows
from margin_retrieval.analysis.results import TEST_MEASURE, read_results
from margin_retrieval.analysis.systems import variant_label

REFERENCES = [("adaptive", "false", "--"), ("adaptive", "true", "--"), ("adaptive", "textbook", "--"),
              ("distributed", "false", "-."), ("margin_mse", "false", ":")]


def _reference_lines(ax, full: pd.DataFrame) -> bool:
    """Draw the reference lines; True if any got an interval (drawn at the right edge, x in axes fractions)."""
    edge, intervals = blended_transform_factory(ax.transAxes, ax.transData), False
    for i, (objective, in_batch, style) in enumerate(REFERENCES):
        match = full[(full["objective"] == objective) & (full["in_batch"] == in_batch)]
        if match.empty:
            continue
        row = match.iloc[0]
        value, shade = float(row["value"]), color(objective, in_batch)
        ax.axhline(value, color=shade, linestyle=style, linewidth=1.2,
                   label=f"{variant_label(objective, in_batch)} ({value:.3f})")
        if row["n_seeds"] > 1:
            ax.errorbar(0.9 + 0.018 * i, value, yerr=float(row["half_width"]), transform=edge, color=shade,
                        capsize=2, linewidth=1.0)
            intervals = True
    return intervals


def _room_on_the_right(ax) -> None:
    """Widen the τ axis on the right so the reference intervals stand clear of the largest τ's points."""
    low, high = ax.get_xlim()
    ax.set_xlim(low, high * 1.4 if ax.get_xscale() == "log" else high + 0.15 * (high - low))


def _tau_axis(ax, taus: list[float]) -> None:
    if not taus:
        placeholder(ax, "no static-margin runs in this configuration")
        ax.set_xlim(0, 1)
    elif len(taus) > 1 and min(taus) > 0:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(taus))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" for t in taus])


@styled
def draw(results: pd.DataFrame, png: PathLike, pdf: PathLike, collection: str | None = None,
         measure: str = TEST_MEASURE, model: str | None = None) -> None:
    rows = default_setting(variant_rows(results, collection, measure, model))
    collection = collection_of(results, collection)
    fig, (ax,) = new_figure()
    full = full_data(rows[rows["kind"] == "trained"])
    static = full[full["objective"] == "static"].dropna(subset=["tau"])
    for in_batch, group in static.groupby("in_batch", sort=True):
        group = group.sort_values("tau")
        ax.errorbar(group["tau"], group["value"], yerr=half_widths(group), marker="o", capsize=3,
                    color=color("static", in_batch), label=variant_label("static", in_batch) + seed_note(group))
    intervals = _reference_lines(ax, full)
    _tau_axis(ax, sorted(static["tau"].unique()))
    if intervals:
        _room_on_the_right(ax)
    ax.set_xlabel(f"static margin τ ({SCORE_UNIT})")
    ax.set_ylabel(f"test {measure} (higher is better)")
    ax.set_title(f"Effectiveness vs static margin on {collection}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    save_figure(fig, png, pdf)


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> None:
    draw(read_results(inputs["results"]), outputs["png"], outputs["pdf"], collection=params.get("collection"))
