"""Test effectiveness per variant, selected from the results table for one collection, measure and student model
(mean over seeds with intervals, ``seeds.aggregate_seeds``), and the comparisons the figures draw from it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from margin_retrieval.analysis.numbers.seeds import aggregate_seeds
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import reference_variant, variant_label


def collection_of(results: pd.DataFrame, collection: str | None) -> str | None:
    """``collection`` checked against the results, or the first collection when None."""
    collections = sorted(results["collection"].unique()) if len(results) else []
    if collection is None:
        return collections[0] if collections else None
    if collection not in collections:
        raise ValueError(f"collection {collection!r} not in the results ({collections})")
    return collection


def variant_rows(results: pd.DataFrame, collection: str | None, measure: str = TEST_MEASURE,
                 model: str | None = None) -> pd.DataFrame:
    """One row per variant of one collection and measure (mean over seeds); trained rows of one student model
    only (default: the first)."""
    collection = collection_of(results, collection)
    rows = results[(results["collection"] == collection) & (results["measure"] == measure)]
    trained = rows[rows["kind"] == "trained"]
    if model is None and len(trained):
        model = sorted(trained["model"].unique())[0]
    rows = rows[(rows["kind"] != "trained") | (rows["model"] == model)]
    return aggregate_seeds(rows).reset_index(drop=True)


def full_data(trained: pd.DataFrame) -> pd.DataFrame:
    """The runs at the largest training fraction (normally 100%)."""
    if trained.empty:
        return trained
    return trained[np.isclose(trained["fraction"], trained["fraction"].max())]


def default_setting(rows: pd.DataFrame, columns: Sequence[str] = ("negatives", "batching")) -> pd.DataFrame:
    """The rows at the most common value of each of ``columns`` (the grid's default negatives and batching), and of
    each objective at its most common learning rate (its chosen one: a learning-rate group adds the others once),
    so a figure about one question does not mix in the variants of another; zero-shot rows stay."""
    for column in columns:
        trained = rows["kind"] == "trained"
        if column in rows and rows.loc[trained, column].nunique() > 1:
            common = rows.loc[trained, column].value_counts().sort_index().idxmax()
            rows = rows[~trained | (rows[column] == common)]
    if "lr" in rows:
        trained = rows[rows["kind"] == "trained"]
        chosen = {objective: group.value_counts().sort_index().idxmax()
                  for objective, group in trained.groupby("objective")["lr"] if group.notna().any()}
        keep = (rows["kind"] != "trained") | rows["lr"].isna() | (rows["lr"] == rows["objective"].map(chosen))
        rows = rows[keep]
    return rows


def reference_row(rows: pd.DataFrame, reference: str) -> pd.Series | None:
    """The reference variant's row (``systems.reference_variant``), or None."""
    name = reference_variant(rows, reference) if len(rows) else None
    if name is None:
        return None
    return rows[rows["system"] == name].iloc[0]


def smallest_matching_fraction(results: pd.DataFrame, margin: float, reference_objective: str = "margin_mse",
                               collection: str | None = None, measure: str = TEST_MEASURE,
                               model: str | None = None) -> dict[str, float | None]:
    """Per adaptive variant (label -> fraction): the smallest training fraction whose mean test ``measure``
    reaches the full-data reference's mean within ``margin`` (value >= reference - margin); None when no fraction
    does or when there is no reference run. Empty when there is no adaptive run."""
    rows = default_setting(variant_rows(results, collection, measure, model))
    reference = reference_row(rows, reference_objective)
    adaptive = rows[(rows["kind"] == "trained") & (rows["objective"] == "adaptive")]
    out: dict[str, float | None] = {}
    for in_batch, group in sorted(adaptive.groupby("in_batch"), key=lambda item: item[0]):
        label = variant_label("adaptive", in_batch)
        if reference is None:
            out[label] = None
            continue
        matching = group[group["value"] >= float(reference["value"]) - margin]
        out[label] = float(matching["fraction"].min()) if len(matching) else None
    return out
