"""Grouped bars of test effectiveness per training objective, one bar per value of a grid column (error bars: 95%
intervals over seeds), each objective's difference to the column's baseline value with its paired-test p under its
name; the drawing behind the ``negatives`` and ``batching`` figures, whose numbers go to a TSV. With one value of
the column in the grid, the bars of that value are drawn under a note saying what the grid lacks."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from margin_retrieval.analysis.figures.style import PathLike, new_figure, placeholder, save_figure, styled
from margin_retrieval.analysis.numbers.comparison import column_comparison, column_differences
from margin_retrieval.analysis.numbers.effectiveness import collection_of
from margin_retrieval.analysis.numbers.seeds import average_per_query
from margin_retrieval.analysis.numbers.train_logs import load_runs
from margin_retrieval.analysis.results import TEST_MEASURE, read_per_query, read_results, write_frame
from margin_retrieval.analysis.systems import read_manifest

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def _bars(ax, table: pd.DataFrame, values: list) -> None:
    labels = list(dict.fromkeys(table["label"]))
    width = 0.8 / max(1, len(values))
    for i, value in enumerate(values):
        part = table[table["value_of"] == value].set_index("label").reindex(labels)
        x = [j + (i - (len(values) - 1) / 2) * width for j in range(len(labels))]
        # No bar (NaN) for a single seed: a zero-width interval would claim certainty.
        errors = part["half_width"].where(part["n_seeds"] > 1).to_numpy(dtype=float)
        ax.bar(x, part["value"].fillna(0.0), width, yerr=errors if (part["n_seeds"] > 1).any() else None, capsize=3,
               color=PALETTE[i % len(PALETTE)], edgecolor="black", linewidth=0.5, label=str(value))
        for xi, v, n, h in zip(x, part["value"], part["n_seeds"], errors):
            if pd.notna(v):
                ax.text(xi, v + (0 if pd.isna(h) else h), f"{v:.3f}" + (f"\n(n={int(n)})" if n > 1 else ""),
                        ha="center", va="bottom", fontsize=6.5)
    tested = table.dropna(subset=["difference"]).set_index("label") if "difference" in table else table.iloc[:0]
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([label.replace(" (", "\n(") + (_difference_text(tested.loc[label]) if label in tested.index
                                                       else "") for label in labels], fontsize=7)


def _difference_text(row: pd.Series) -> str:
    p = row["p_holm"]
    return f"\nΔ {row['difference']:+.3f}\np(Holm) " + ("<0.001" if p < 0.001 else f"{p:.3f}")


@styled
def draw(table: pd.DataFrame, column: str, names: Mapping[str, str], title: str, png: PathLike, pdf: PathLike,
         measure: str = TEST_MEASURE) -> None:
    """``table`` from ``numbers.comparison.column_comparison`` (with ``column_differences``' columns, if given);
    ``names`` maps a column value to its legend name."""
    fig, (ax,) = new_figure(width=8.5, height=4.2)
    values = sorted(table["value_of"].unique()) if len(table) else []
    if len(table):
        _bars(ax, table.assign(value_of=table["value_of"].map(lambda v: names.get(v, v))),
              [names.get(v, v) for v in values])
        ax.legend(title=column, loc="lower right")
        top = float((table["value"] + table["half_width"].fillna(0.0)).max())
        ax.set_ylim(0, top * (1.45 if len(values) < 2 else 1.15))
    if len(values) < 2:
        have = f"only {column} = {values[0]}" if values else "no trained runs"
        placeholder(ax, f"the grid has {have}: add a second value of the `{column}`\n"
                        "column to an experiment group to draw this comparison", y=0.88 if values else 0.5)
    ax.set_ylabel(f"test {measure} (higher is better)")
    ax.set_title(title)
    save_figure(fig, png, pdf)


def build_for(column: str, names: Mapping[str, str], title: str, inputs: Mapping, params: Mapping,
              outputs: Mapping) -> pd.DataFrame:
    """Load the results, the training logs (for the best static τ on validation) and the per-query scores (for the
    paired tests against the baseline value), draw, and write the numbers to ``outputs["tsv"]`` if given."""
    results = read_results(inputs["results"])
    manifest = read_manifest(inputs["manifest"])
    runs = load_runs(manifest)
    collection = collection_of(results, params.get("collection"))
    table = column_comparison(results, runs, column, collection)
    seeds = manifest[(manifest["collection"] == collection) & manifest["variant"].isin(table["system"])]
    scores = average_per_query({row["system"]: read_per_query(row["per_query"]) for row in seeds.to_dict("records")})
    table = column_differences(table, column, scores)
    draw(table, column, names, f"{title} on {collection}", outputs["png"], outputs["pdf"])
    if outputs.get("tsv"):
        write_frame(table, outputs["tsv"])
    return table
