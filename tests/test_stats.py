"""Paired tests, Holm correction and TOST against p-values computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as sps

from margin_retrieval.analysis.stats import align, holm, holm_adjust, paired_ttest, tost_paired

# Differences a - b = [0.1, 0.2, 0.3, 0.0, 0.4]: mean 0.2, sd sqrt(0.025), se = sqrt(0.025 / 5) = sqrt(0.005).
A = {"q1": 0.5, "q2": 0.6, "q3": 0.9, "q4": 0.4, "q5": 0.8}
B = {"q1": 0.4, "q2": 0.4, "q3": 0.6, "q4": 0.4, "q5": 0.4}
SE = math.sqrt(0.005)


def test_align_orders_by_query_id_and_accepts_series():
    ids, x, y = align(pd.Series({"b": 2.0, "a": 1.0}), {"a": 3.0, "b": 4.0})
    assert ids == ["a", "b"]
    assert list(x) == [1.0, 2.0] and list(y) == [3.0, 4.0]


def test_mismatched_query_sets_are_an_error():
    with pytest.raises(ValueError, match="different queries"):
        paired_ttest(A, {**B, "q6": 0.1})
    with pytest.raises(ValueError, match="different queries"):
        tost_paired(A, {k: v for k, v in B.items() if k != "q1"}, margin=0.1)


def test_paired_ttest_matches_hand_computation():
    t = 0.2 / SE  # 2.8284...
    result = paired_ttest(A, B)
    assert result["statistic"] == pytest.approx(t)
    assert result["df"] == 4
    assert result["mean_diff"] == pytest.approx(0.2)
    assert result["p_value"] == pytest.approx(2 * sps.t.sf(t, 4))
    assert result["p_value"] == pytest.approx(0.04742, abs=1e-5)  # table value for t = 2.828, df = 4
    assert paired_ttest(B, A)["p_value"] == pytest.approx(result["p_value"])


def test_identical_systems_are_not_significant():
    assert paired_ttest(A, A)["p_value"] == 1.0


def test_holm_textbook_example():
    # p = (0.01, 0.04, 0.03, 0.005), m = 4: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> 0.06.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    named = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005}, alpha=0.05)
    assert {k: v["reject"] for k, v in named.items()} == {"a": True, "b": False, "c": False, "d": True}
    assert named["b"]["p_value"] == 0.04


def test_holm_caps_at_one_and_ignores_nan():
    assert holm_adjust([0.5, 0.6, math.nan]) == pytest.approx([1.0, 1.0, math.nan], nan_ok=True)
    assert holm_adjust([0.02]) == [0.02]
    assert holm_adjust([]) == []


def test_tost_matches_two_one_sided_tests():
    margin = 0.25
    result = tost_paired(A, B, margin=margin, alpha=0.05)
    t_lower, t_upper = (0.2 + margin) / SE, (0.2 - margin) / SE
    assert result["t_lower"] == pytest.approx(t_lower)
    assert result["t_upper"] == pytest.approx(t_upper)
    expected = max(sps.t.sf(t_lower, 4), sps.t.cdf(t_upper, 4))
    assert result["p_value"] == pytest.approx(expected)
    assert result["equivalent"] is bool(expected < 0.05)
    assert result["margin"] == margin


def test_tost_verdicts():
    # Wide margin: equivalent; the 90% CI lies inside it.
    wide = tost_paired(A, B, margin=0.5, alpha=0.05)
    assert wide["equivalent"] and -0.5 < wide["ci_low"] < wide["ci_high"] < 0.5
    assert wide["p_value"] == pytest.approx(sps.t.cdf((0.2 - 0.5) / SE, 4))
    # Margin below the observed difference: not equivalent.
    assert not tost_paired(A, B, margin=0.1)["equivalent"]
    # Identical systems are equivalent at any margin.
    assert tost_paired(A, A, margin=0.01)["equivalent"]
    with pytest.raises(ValueError):
        tost_paired(A, B, margin=0)


def test_mean_ci_over_seeds_by_hand():
    from margin_retrieval.analysis.numbers.seeds import mean_ci

    # Seeds 0.60, 0.62, 0.67: mean 0.63, sd = sqrt((0.03² + 0.01² + 0.04²) / 2) = sqrt(0.0013),
    # t_{0.975, 2} = 4.302652729911275 (tables), half-width = t * sd / sqrt(3).
    interval = mean_ci([0.60, 0.62, 0.67])
    half = 4.302652729911275 * math.sqrt(0.0013) / math.sqrt(3)
    assert interval["n"] == 3 and interval["mean"] == pytest.approx(0.63)
    assert interval["sd"] == pytest.approx(math.sqrt(0.0013))
    assert (interval["ci_low"], interval["ci_high"]) == pytest.approx((0.63 - half, 0.63 + half))
    one = mean_ci([0.5])
    assert one["mean"] == 0.5 and math.isnan(one["ci_low"]) and math.isnan(one["half_width"])
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])


def test_average_per_query_over_seeds():
    from margin_retrieval.analysis.numbers.seeds import average_per_query

    scores = {"trained/a/seed~0": pd.Series({"q1": 0.2, "q2": 0.4}), "trained/a/seed~1": pd.Series({"q2": 0.6, "q1": 0.4}),
              "zeroshot/m": pd.Series({"q1": 0.1, "q2": 0.1})}
    averaged = average_per_query(scores)
    assert averaged["trained/a"].to_dict() == pytest.approx({"q1": 0.3, "q2": 0.5})
    assert averaged["zeroshot/m"].to_dict() == {"q1": 0.1, "q2": 0.1}
    with pytest.raises(ValueError, match="different queries"):
        average_per_query({"trained/a/seed~0": pd.Series({"q1": 0.2}), "trained/a/seed~1": pd.Series({"q2": 0.2})})
