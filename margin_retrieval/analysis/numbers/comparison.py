"""Test effectiveness of each training objective under every value of one grid column (``negatives``: bm25 vs
student; ``batching``: random vs clustered), for the figures that put one claim to the test.

Per objective and in-batch setting and per value of the column: the full-data variant (mean over seeds with its
95% interval), the other such column held at its most common value. A static margin enters with its best τ for
that value, chosen on **validation** (the mean over seeds of each run's best validation value), never on test.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from margin_retrieval.analysis.numbers.effectiveness import default_setting, full_data, variant_rows
from margin_retrieval.analysis.numbers.train_logs import by_variant, mean_best
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import OBJECTIVE_ORDER, variant_label

COMPARED_COLUMNS = ("negatives", "batching")
COLUMNS = ["label", "objective", "in_batch", "value_of", "value", "half_width", "n_seeds", "tau", "system"]


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
