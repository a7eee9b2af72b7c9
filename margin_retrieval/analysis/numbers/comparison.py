"""Test effectiveness of each training objective under every value of one grid column (``negatives``: bm25 vs
student; ``batching``: random vs clustered), for the figures that put one claim to the test.

Per objective and in-batch setting and per value of the column: the full-data variant (mean over seeds with its
95% interval), the other such column held at its most common value. A static margin enters with its best τ for
that value, chosen on **validation** (the mean over seeds of each run's best validation value), never on test.
``column_differences`` then reads each value against the column's baseline (random batches, BM25 negatives) with a
paired t-test over the per-query scores (averaged over seeds), Holm-corrected over the objectives of the figure:
the noise a one-seed grid can show.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from margin_retrieval.analysis import stats
from margin_retrieval.analysis.numbers.effectiveness import default_setting, full_data, variant_rows
from margin_retrieval.analysis.numbers.train_logs import by_variant, mean_best
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import OBJECTIVE_ORDER, variant_label

COMPARED_COLUMNS = ("negatives", "batching")
COLUMNS = ["label", "objective", "in_batch", "value_of", "value", "half_width", "n_seeds", "tau", "system"]
BASELINES = {"negatives": "bm25", "batching": "random"}


def _best_on_validation(group: pd.DataFrame, runs_by_variant: dict[str, list[dict]]) -> pd.DataFrame:
    """The row of ``group`` (static variants differing in τ) with the best mean validation value."""
    missing = sorted(set(group["system"]) - set(runs_by_variant))
    if missing:
        raise ValueError(f"no training log for {missing[0]}: the best static τ is chosen on validation")
    best = max(group.to_dict("records"), key=lambda r: (mean_best(runs_by_variant[r["system"]]), -float(r["tau"])))
    return group[group["system"] == best["system"]]


def column_comparison(results: pd.DataFrame, runs: Sequence[dict], column: str, collection: str | None = None,
                      measure: str = TEST_MEASURE, model: str | None = None) -> pd.DataFrame:
    """One row per objective/in-batch label x value of ``column`` (``value_of``), in objective order."""
    if column not in COMPARED_COLUMNS:
        raise ValueError(f"column must be one of {COMPARED_COLUMNS}, got {column!r}")
    rows = variant_rows(results, collection, measure, model)
    others = [c for c in COMPARED_COLUMNS if c != column]
    trained = default_setting(full_data(rows[rows["kind"] == "trained"]), others)
    runs_by_variant = by_variant(runs)
    out = []
    for (objective, in_batch, value), group in trained.groupby(["objective", "in_batch", column], sort=False):
        label = variant_label(objective, in_batch)
        if objective == "static":
            group = _best_on_validation(group, runs_by_variant)
            label = variant_label(objective, in_batch) + " (best τ on validation)"
        row = group.iloc[0]
        out.append({"label": label, "objective": objective, "in_batch": in_batch, "value_of": value,
                    "value": float(row["value"]), "half_width": row["half_width"], "n_seeds": int(row["n_seeds"]),
                    "tau": row["tau"], "system": row["system"]})
    order = {name: i for i, name in enumerate(OBJECTIVE_ORDER)}
    out.sort(key=lambda r: (order.get(r["objective"], len(order)), r["in_batch"], str(r["value_of"])))
    return pd.DataFrame(out, columns=COLUMNS)


def column_differences(table: pd.DataFrame, column: str, scores: Mapping[str, pd.Series]) -> pd.DataFrame:
    """``table`` (``column_comparison``) with, on each row of a non-baseline value, ``baseline`` (the system it is
    read against: the same label under ``BASELINES[column]``), ``difference`` (value - baseline value), and the
    paired t-test ``p_value`` over ``scores`` (variant id -> per-query scores, seeds averaged), Holm-corrected over
    the rows tested (``p_holm``). Baseline rows and labels without a baseline row keep these cells empty."""
    out = table.assign(baseline="", difference=math.nan, p_value=math.nan, p_holm=math.nan)
    baselines = table[table["value_of"] == BASELINES[column]].set_index("label")
    tested = []
    for i, row in table.iterrows():
        if row["value_of"] == BASELINES[column] or row["label"] not in baselines.index:
            continue
        baseline = baselines.loc[row["label"]]
        for system in (row["system"], baseline["system"]):
            if system not in scores:
                raise ValueError(f"no per-query scores for {system}")
        test = stats.paired_ttest(scores[row["system"]], scores[baseline["system"]])
        out.loc[i, ["baseline", "difference", "p_value"]] = [baseline["system"], row["value"] - baseline["value"],
                                                             test["p_value"]]
        tested.append(i)
    if tested:
        out.loc[tested, "p_holm"] = stats.holm_adjust(out.loc[tested, "p_value"].tolist())
    return out
