"""Aggregation over seeds: the mean of a variant's runs with a 95% confidence interval (Student's t over seeds,
n - 1 degrees of freedom), and per-query scores averaged over seeds for the paired tests.

With one seed the interval is undefined (NaN bounds, ``n_seeds`` 1): tables and figures then show the single value
without error bars instead of a zero-width interval that would claim certainty.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from margin_retrieval.analysis.systems import VARIANT_COLUMNS, variant_id

CONFIDENCE = 0.95


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Mean, sample standard deviation and the two-sided t interval ``mean ± t_{1-(1-c)/2, n-1} * sd / sqrt(n)``."""
    x = np.asarray([float(v) for v in values], dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no values to average")
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": math.nan, "half_width": math.nan, "ci_low": math.nan,
                "ci_high": math.nan}
    sd = float(x.std(ddof=1))
    half = float(sps.t.ppf(1 - (1 - confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "half_width": half, "ci_low": mean - half, "ci_high": mean + half}


def aggregate_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """One row per variant x collection x measure of a results table: ``value`` is the mean over seeds, with
    ``ci_low``, ``ci_high``, ``half_width`` and ``n_seeds``; ``system`` is the variant id (the seed-free name),
    ``seeds`` the seeds averaged."""
    if results.empty:
        return results.assign(ci_low=[], ci_high=[], half_width=[], n_seeds=[], seeds=[])
    frame = results.assign(system=results["system"].map(variant_id))
    columns = ["system", *[c for c in VARIANT_COLUMNS if c in frame], "collection", "measure"]
    rows = []
    for key, group in frame.groupby(columns, sort=False, dropna=False):
        interval = mean_ci(group["value"])
        rows.append({**dict(zip(columns, key)), "value": interval["mean"], "ci_low": interval["ci_low"],
                     "ci_high": interval["ci_high"], "half_width": interval["half_width"],
                     "n_seeds": interval["n"], "seeds": sorted(int(s) for s in group.get("seed", [0]))})
    return pd.DataFrame(rows)


def average_per_query(per_query: Mapping[str, pd.Series]) -> dict[str, pd.Series]:
    """Per variant: the per-query scores of its systems (one per seed) averaged query by query; the seeds must
    have been evaluated on the same queries."""
    groups: dict[str, list[pd.Series]] = {}
    for system, scores in per_query.items():
        groups.setdefault(variant_id(system), []).append(scores)
    averaged = {}
    for variant, series in groups.items():
        ids = set(series[0].index)
        if any(set(s.index) != ids for s in series[1:]):
            raise ValueError(f"the seeds of {variant} were evaluated on different queries")
        averaged[variant] = pd.concat([s.sort_index() for s in series], axis=1).mean(axis=1)
    return averaged
