"""The claims table: seed intervals, readings and verdicts on hand-computed numbers."""

import math

import pandas as pd
import pytest

from margin_retrieval.analysis.claims import build_claims
from margin_retrieval.analysis.numbers.claims import (
    CANNOT_TELL, DOES_NOT_HOLD, HOLDS, Interval, difference_interval, effectiveness_claims, matches_verdict,
    pooled_seed_sd, reading, speedup_claims, speedup_verdict,
)
from margin_retrieval.analysis.results import write_results
from margin_retrieval.jobs.io import write_json

T_2, T_10 = 4.302652729911275, 2.2281388519649385  # t quantiles 0.975 at 2 and 10 degrees of freedom


def test_pooled_seed_sd_pools_the_groups_with_several_seeds():
    # Sums of squares 2 (1, 3) and 8 (2, 4, 6) over 1 + 2 degrees of freedom; a lone seed adds nothing.
    sd, df = pooled_seed_sd([[1, 3], [2, 4, 6], [5]])
    assert (sd, df) == (pytest.approx(math.sqrt(10 / 3)), 3)
    assert pooled_seed_sd([[1], [2]]) is None


def test_difference_interval_is_welch_with_seeds_on_both_sides_else_pooled():
    # Variances .0002 each over 2 seeds: se = sqrt(.0001 + .0001), Welch df = 2.
    welch = difference_interval([0.60, 0.62], [0.50, 0.52], pooled=None)
    half = T_2 * math.sqrt(0.0002)
    assert welch.method == "Welch over seeds" and welch.difference == pytest.approx(0.10)
    assert (welch.low, welch.high) == (pytest.approx(0.10 - half), pytest.approx(0.10 + half))
    single = difference_interval([0.60], [0.50], pooled=(0.01, 10))
    half = T_10 * 0.01 * math.sqrt(2)
    assert single.method == "pooled seed σ"
    assert (single.low, single.high) == (pytest.approx(0.10 - half), pytest.approx(0.10 + half))
    unknown = difference_interval([0.60], [0.50], pooled=None)
    assert math.isnan(unknown.low) and matches_verdict(unknown, 0.01) == CANNOT_TELL


@pytest.mark.parametrize("low, high, read, verdict", [
    (0.002, 0.030, "higher", HOLDS),
    (-0.008, 0.009, "tie", HOLDS),
    (-0.009, 0.040, "unresolved", HOLDS),  # not worse by more than the margin, whatever the upper end
    (-0.030, 0.020, "unresolved", CANNOT_TELL),
    (-0.030, -0.005, "lower", CANNOT_TELL),  # lower, but perhaps by less than the margin
    (-0.050, -0.011, "lower", DOES_NOT_HOLD),
])
def test_reading_and_matches_verdict(low, high, read, verdict):
    interval = Interval((low + high) / 2, low, high, "Welch over seeds")
    assert reading(interval, 0.01) == read
    assert matches_verdict(interval, 0.01) == verdict


def steps(mean, low=None, high=None, n=3):
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": n}


@pytest.mark.parametrize("to_target, verdict, speedup, bounds", [
    ({"n_reached": 0, "n_seeds": 3, "steps": None}, DOES_NOT_HOLD, math.nan, None),
    ({"n_reached": 2, "n_seeds": 3, "steps": steps(40, 30, 50, 2)}, CANNOT_TELL, math.nan, None),
    ({"n_reached": 1, "n_seeds": 1, "steps": steps(40, n=1)}, CANNOT_TELL, 10.0, None),
    ({"n_reached": 3, "n_seeds": 3, "steps": steps(40, 20, 100)}, HOLDS, 10.0, (4.0, 20.0)),
    ({"n_reached": 3, "n_seeds": 3, "steps": steps(200, 150, 250)}, DOES_NOT_HOLD, 2.0, (1.6, 400 / 150)),
    ({"n_reached": 3, "n_seeds": 3, "steps": steps(100, -10, 210)}, CANNOT_TELL, 4.0, (400 / 210, math.inf)),
])
def test_speedup_verdict_against_a_400_step_sweep(to_target, verdict, speedup, bounds):
    out = speedup_verdict(400.0, to_target)
    assert out["verdict"] == verdict
    assert out["speedup"] == pytest.approx(speedup, nan_ok=True)
    if bounds:
        assert (out["low"], out["high"]) == (pytest.approx(bounds[0]), pytest.approx(bounds[1]))


def result(objective, value, seed=0, in_batch="false", tau=math.nan, fraction=1.0, negatives="bm25",
           batching="random", lr=2e-4, collection="c"):
    tau_name = "none" if math.isnan(tau) else f"{tau:g}"
    return {"system": f"trained/model~s/objective~{objective}/in_batch~{in_batch}/tau~{tau_name}/fraction~{fraction:g}"
                      f"/negatives~{negatives}/batching~{batching}/seed~{seed}/lr~{lr:g}",
            "kind": "trained", "model": "s", "objective": objective, "in_batch": in_batch, "tau": tau,
            "fraction": fraction, "negatives": negatives, "batching": batching, "seed": seed, "lr": lr,
            "collection": collection, "measure": "nDCG@10", "value": value}


RESULTS = pd.DataFrame([
    result("margin_mse", 0.50), result("margin_mse", 0.52, seed=1),
    result("margin_mse", 0.10, lr=1e-4),  # another learning rate, not the objective's chosen (most common) one
    result("adaptive", 0.60), result("adaptive", 0.62, seed=1),
    result("adaptive", 0.40, fraction=0.125),
    result("adaptive", 0.90, negatives="student"),  # another negative source: not compared
    result("static", 0.61, tau=0.5), result("static", 0.30, tau=0.1),
])


def test_effectiveness_claims_on_a_small_grid():
    """Pooled seed σ: margin_mse and adaptive at full data each have sum of squares .0002 over 1 df -> σ .01414, 2 df.
    adaptive vs Margin-MSE: +.10, Welch -> higher, holds. 12.5% (.40) vs Margin-MSE (.51): -.11 ± t2·σ·sqrt(1 + 1/2)
    = [-.185, -.035] -> lower, does not hold. adaptive vs static τ 0.5 (.61): 0 ± .075 -> cannot tell."""
    rows = effectiveness_claims(RESULTS, 0.01, "bm25", "s", best_tau={"false": 0.5})
    assert [(r["claim"], r["reading"], r["verdict"]) for r in rows] == [
        ("matches Margin-MSE", "higher", HOLDS),
        ("matches Margin-MSE with 13.5% of the data", "lower", DOES_NOT_HOLD),
        ("matches the static margin at the τ validation picks", "unresolved", CANNOT_TELL),
    ]
    small = rows[1]
    half = T_2 * math.sqrt(0.0002) * math.sqrt(1 + 1 / 2)
    assert (small["value"], small["compared_value"]) == (pytest.approx(0.40), pytest.approx(0.51))
    assert (small["ci_low"], small["ci_high"]) == (pytest.approx(-0.11 - half), pytest.approx(-0.11 + half))
    assert rows[2]["compared_with"] == "static margin τ 0.5" and rows[2]["interval"] == "pooled seed σ"


def test_claims_follow_the_configured_collection_order():
    both = pd.concat([RESULTS.assign(collection="b"), RESULTS.assign(collection="a")])
    assert [r["collection"] for r in effectiveness_claims(both, 0.01, "bm25", "s")] == ["b", "b", "a", "a"]
    ordered = effectiveness_claims(both, 0.01, "bm25", "s", collections=["a", "b"])
    assert [r["collection"] for r in ordered] == ["a", "a", "b", "b"]


def test_batching_claim_compares_random_with_clustered_batches():
    clustered = pd.concat([RESULTS, pd.DataFrame([result("adaptive", 0.70, batching="clustered")])])
    (row,) = [r for r in effectiveness_claims(clustered, 0.01, "bm25", "s") if "batch sampling" in r["claim"]]
    assert row["difference"] == pytest.approx(0.61 - 0.70) and row["compared_seeds"] == 1


SPEEDUP = {"target": 0.6, "variants": [{
    "label": "adaptive margin", "in_batch": "false",
    "to_target": {"n_reached": 2, "n_seeds": 2, "steps": steps(40, 20, 100, 2)},
    "static_sweep": {"label": "static margin sweep", "taus": [0.1, 0.5], "best_tau": 0.5,
                     "cost": {"steps": 400.0}, "halving": {"kept_tau": 0.5, "steps": 100}},
}]}


def test_speedup_claims_against_the_full_sweep_and_halving():
    full, halving = speedup_claims(SPEEDUP)
    assert (full["speedup"], full["verdict"]) == (10.0, HOLDS)  # [400/100, 400/20] = [4, 20]
    assert (halving["speedup"], halving["verdict"]) == (2.5, CANNOT_TELL)  # [1, 5] spans 3
    assert "keeps τ 0.5" in halving["compared_with"]


def test_build_claims_writes_markdown_and_tsv(tmp_path):
    write_results(RESULTS, tmp_path / "results.tsv")
    write_json(tmp_path / "speedup.json", SPEEDUP)
    build_claims(tmp_path / "results.tsv", tmp_path / "speedup.json", {"equivalence_margin": 0.01}, "bm25", "s",
                 tmp_path / "claims.md", tmp_path / "claims.tsv")
    text = (tmp_path / "claims.md").read_text()
    assert "| matches Margin-MSE with 13.5% of the data | c | adaptive margin, 12.5% data |" in text
    assert "| 10.0x [4.0, 20.0] | holds |" in text
    table = pd.read_csv(tmp_path / "claims.tsv", sep="\t")
    assert list(table["verdict"]) == [HOLDS, DOES_NOT_HOLD, CANNOT_TELL, HOLDS, CANNOT_TELL]
