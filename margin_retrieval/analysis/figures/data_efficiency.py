"""Test effectiveness vs training fraction (one line per objective trained on reduced data, error bars over
seeds; an adaptive variant trained on full data only as a lone point), the full-data reference with its
equivalence band, and the zero-shot models as horizontal lines; the smallest fraction that matches the reference
(``numbers.effectiveness.smallest_matching_fraction``) is printed on the figure and written as JSON."""

from __future__ import annotations

import textwrap
from typing import Mapping

import pandas as pd
from matplotlib.ticker import FixedLocator, NullLocator

from margin_retrieval.analysis.figures.style import (
    ZEROSHOT_COLORS, PathLike, color, half_widths, new_figure, percent, placeholder, save_figure, styled,
)
from margin_retrieval.analysis.numbers.effectiveness import (
    collection_of, default_setting, reference_row, smallest_matching_fraction, variant_rows,
)
from margin_retrieval.analysis.results import TEST_MEASURE, read_results
from margin_retrieval.analysis.systems import system_label, variant_label
from margin_retrieval.jobs.io import write_json


def _lines(ax, trained: pd.DataFrame, summarised: set[str]) -> set[float]:
    """One line per objective/in-batch/τ that has a reduced fraction, and a lone point for a variant the summary
    names (``summarised``) that was trained on full data only; returns the fractions drawn."""
    fractions: set[float] = set()
    lone = []
    for (objective, in_batch, tau), group in trained.fillna({"tau": -1}).groupby(["objective", "in_batch", "tau"]):
        label = variant_label(objective, in_batch) + (f" τ={tau:g}" if objective == "static" else "")
        if not (group["fraction"] < 1).any():
            if label in summarised:
                lone.append((objective, in_batch, label, group))
            continue  # otherwise not part of a data-efficiency experiment
        group = group.sort_values("fraction")
        ax.errorbar(group["fraction"], group["value"], yerr=half_widths(group), marker="o", capsize=3,
                    color=color(objective, in_batch), label=label)
        fractions.update(group["fraction"])
    for objective, in_batch, label, group in lone if fractions else ():  # a point needs an axis of fractions
        ax.errorbar(group["fraction"], group["value"], yerr=half_widths(group), marker="D", capsize=3,
                    linestyle="none", color=color(objective, in_batch), label=f"{label} (100% data only)")
    return fractions


def _horizontal_lines(ax, rows: pd.DataFrame, reference: pd.Series | None, margin: float, student, teacher):
    if reference is not None:
        label = system_label(reference.to_dict())
        if reference["kind"] == "trained":
            label += f" ({percent(reference['fraction'])} data)"
        value = float(reference["value"])
        ax.axhline(value, color="black", linestyle="--", linewidth=1.2, label=f"{label} ({value:.3f})")
        ax.axhspan(value - margin, value, color="black", alpha=0.08, linewidth=0,
                   label=f"equivalence margin (−{margin:g})")
    zeroshot = rows[rows["kind"] == "zeroshot"].sort_values("model")
    for shade, row in zip(ZEROSHOT_COLORS, zeroshot.to_dict("records")):
        role = " (student)" if row["model"] == student else " (teacher)" if row["model"] == teacher else ""
        ax.axhline(row["value"], color=shade, linestyle=":", linewidth=1.2,
                   label=f"{row['model']}{role}, zero-shot ({row['value']:.3f})")


def _summary(reference, smallest: Mapping, reference_objective: str, margin: float) -> str:
    if reference is None:
        return f"no {reference_objective} reference run: matching fraction undefined"
    if not smallest:
        return "no adaptive runs in this configuration"
    return f"smallest fraction within −{margin:g}\nof the reference:\n" + "\n".join(
        f"  {label}: " + (percent(value) if value is not None else "not reached") for label, value in smallest.items())


@styled
def draw(results: pd.DataFrame, png: PathLike, pdf: PathLike, margin: float, reference_objective: str = "margin_mse",
         collection: str | None = None, measure: str = TEST_MEASURE, student: str | None = None,
         teacher: str | None = None, model: str | None = None,
         budget: str | None = None) -> dict[str, float | None]:
    """Draw the figure; returns ``smallest_matching_fraction``. ``budget`` says how long each run could train (a cap
    in epochs gives smaller fractions fewer updates; a cap in steps gives every fraction the same)."""
    rows = default_setting(variant_rows(results, collection, measure, model))
    fig, (ax,) = new_figure(width=7.5, height=4.2)
    smallest = smallest_matching_fraction(results, margin, reference_objective, collection, measure, model)
    fractions = _lines(ax, rows[rows["kind"] == "trained"], set(smallest))
    reference = reference_row(rows, reference_objective)
    _horizontal_lines(ax, rows, reference, margin, student, teacher)
    if not fractions:
        placeholder(ax, "no runs on reduced training data in this configuration")
        ax.set_xlim(0, 1)
    else:
        ticks = sorted(fractions)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([percent(f) for f in ticks])
    ax.text(1.03, 0.0, _summary(reference, smallest, reference_objective, margin), transform=ax.transAxes,
            ha="left", va="bottom", fontsize=8, bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#999999"})
    ax.set_xlabel("training data (% of training queries, log scale)")
    ax.set_ylabel(f"test {measure} (higher is better)")
    # The budget is wrapped to 62 characters, about the axes width when the widest legend of the grids sits right
    # of the axes: one long line would run off the left edge of the figure, and the default's one-line budget
    # (61 characters) stays on one line.
    title = [f"Data efficiency on {collection_of(results, collection)}", *textwrap.wrap(budget or "", 62)]
    ax.set_title("\n".join(title))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save_figure(fig, png, pdf)
    return smallest


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> dict[str, float | None]:
    analysis = params.get("analysis") or {}
    reference_objective = analysis.get("reference_objective", "margin_mse")
    margin = analysis.get("equivalence_margin", 0.01)
    collection = params.get("collection")
    results = read_results(inputs["results"])
    smallest = draw(results, outputs["png"], outputs["pdf"], margin=margin, reference_objective=reference_objective,
                    collection=collection, student=params.get("student"), teacher=params.get("teacher"),
                    budget=params.get("budget"))
    if outputs.get("json"):
        reference = reference_row(default_setting(variant_rows(results, collection)), reference_objective)
        write_json(outputs["json"], {
            "collection": collection_of(results, collection), "measure": TEST_MEASURE, "margin": margin,
            "reference_system": None if reference is None else reference["system"],
            "reference_value": None if reference is None else float(reference["value"]),
            "reference_seeds": None if reference is None else int(reference["n_seeds"]),
            "smallest_matching_fraction": smallest, "budget": params.get("budget"),
        })
    return smallest
