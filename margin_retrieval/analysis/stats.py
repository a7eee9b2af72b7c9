"""Significance and equivalence tests on per-query scores, returning plain dicts.

Scores of two systems are paired by query id (``align``); every test refuses query sets that differ, because a
silently dropped query changes the result. Conventions for degenerate inputs (all differences equal, so the
t statistic is undefined): identical systems get p = 1 for the difference tests, and the TOST verdict follows the
(exact) mean difference.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps

Scores = Mapping[str, float]  # query id -> score; a pandas Series indexed by query id works too


def align(a: Scores, b: Scores) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Query ids (sorted) and the two score vectors in that order; ValueError when the query sets differ."""
    a_ids, b_ids = set(map(str, _keys(a))), set(map(str, _keys(b)))
    if len(a_ids) != len(_keys(a)) or len(b_ids) != len(_keys(b)):
        raise ValueError("per-query scores contain a duplicated query id")
    if a_ids != b_ids:
        only_a, only_b = sorted(a_ids - b_ids), sorted(b_ids - a_ids)
        raise ValueError(
            f"the two systems were evaluated on different queries: {len(only_a)} only in the first "
            f"(e.g. {only_a[:3]}), {len(only_b)} only in the second (e.g. {only_b[:3]})"
        )
    if not a_ids:
        raise ValueError("no per-query scores to compare")
    ids = sorted(a_ids)
    a_map = {str(k): float(v) for k, v in a.items()}
    b_map = {str(k): float(v) for k, v in b.items()}
    return ids, np.array([a_map[q] for q in ids]), np.array([b_map[q] for q in ids])


def _keys(scores: Scores) -> list:
    return list(scores.keys())  # a dict's keys or a Series' index


def _summary(a: np.ndarray, b: np.ndarray) -> dict:
    return {"n": int(len(a)), "mean_a": float(a.mean()), "mean_b": float(b.mean()),
            "mean_diff": float((a - b).mean())}


def paired_ttest(a: Scores, b: Scores) -> dict:
    """Two-sided paired t-test of mean(a - b) = 0."""
    _, x, y = align(a, b)
    d = x - y
    n = len(d)
    result = {"test": "paired t-test", **_summary(x, y), "df": n - 1}
    if n < 2:
        return {**result, "statistic": math.nan, "p_value": math.nan}
    sd = float(d.std(ddof=1))
    if sd == 0 or not math.isfinite(sd):
        # Every difference is the same: no variance to test against.
        same = float(d.mean()) == 0
        return {**result, "statistic": 0.0 if same else math.copysign(math.inf, d.mean()),
                "p_value": 1.0 if same else 0.0}
    t = float(d.mean()) / (sd / math.sqrt(n))
    return {**result, "statistic": t, "p_value": float(2 * sps.t.sf(abs(t), n - 1))}


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (NaNs stay NaN and do not count as tests)."""
    p = [float(v) for v in p_values]
    valid = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m = len(valid)
    adjusted = [math.nan] * len(p)
    running = 0.0
    for rank, (value, index) in enumerate(valid):
        running = max(running, min(1.0, (m - rank) * value))
        adjusted[index] = running
    return adjusted


def holm(p_values: Mapping[str, float], alpha: float = 0.05) -> dict[str, dict]:
    """Holm-Bonferroni correction of named p-values: name -> {p_value, p_holm, reject}."""
    names = list(p_values)
    adjusted = holm_adjust([p_values[n] for n in names])
    return {
        name: {"p_value": float(p_values[name]), "p_holm": adj, "reject": bool(adj < alpha)}
        for name, adj in zip(names, adjusted)
    }


def tost_paired(a: Scores, b: Scores, margin: float, alpha: float = 0.05) -> dict:
    """Paired TOST: is mean(a - b) inside (-margin, +margin)?

    Two one-sided paired t-tests, H0_lower: mean <= -margin and H0_upper: mean >= +margin; the TOST p-value is
    the larger of the two, and the systems are declared equivalent when it is below ``alpha`` (equivalently, the
    (1 - 2 alpha) confidence interval of the mean difference lies inside the margin).
    """
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin!r}")
    _, x, y = align(a, b)
    d = x - y
    n = len(d)
    mean = float(d.mean())
    result = {"test": "paired TOST", **_summary(x, y), "margin": float(margin), "alpha": float(alpha),
              "df": n - 1}
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return {**result, "t_lower": math.nan, "t_upper": math.nan, "p_lower": math.nan, "p_upper": math.nan,
                "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "equivalent": False}
    if sd == 0:
        inside = -margin < mean < margin
        p = 0.0 if inside else 1.0
        return {**result, "t_lower": math.inf if mean > -margin else -math.inf,
                "t_upper": -math.inf if mean < margin else math.inf, "p_lower": 0.0 if mean > -margin else 1.0,
                "p_upper": 0.0 if mean < margin else 1.0, "p_value": p, "ci_low": mean, "ci_high": mean,
                "equivalent": inside}
    se = sd / math.sqrt(n)
    t_lower = (mean + margin) / se
    t_upper = (mean - margin) / se
    p_lower = float(sps.t.sf(t_lower, n - 1))
    p_upper = float(sps.t.cdf(t_upper, n - 1))
    p = max(p_lower, p_upper)
    half = float(sps.t.ppf(1 - alpha, n - 1)) * se
    return {**result, "t_lower": t_lower, "t_upper": t_upper, "p_lower": p_lower, "p_upper": p_upper,
            "p_value": p, "ci_low": mean - half, "ci_high": mean + half, "equivalent": bool(p < alpha)}
