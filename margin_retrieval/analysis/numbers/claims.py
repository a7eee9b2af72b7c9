"""The paper's claims, each read against the measured seed noise as **holds**, **does not hold** or **cannot tell**.

Effectiveness claims compare test nDCG@10 of two variants (mean over seeds). The difference d = a - b gets a 95%
interval from the seed-to-seed spread, the noise that decides what a re-run would show:

- both variants with two or more seeds: Welch's t interval, d ± t(ν) * sqrt(s_a²/n_a + s_b²/n_b), ν by
  Welch-Satterthwaite;
- otherwise: the pooled seed standard deviation s_p of every variant of the grid with two or more seeds (same
  collection), d ± t(df_p) * s_p * sqrt(1/n_a + 1/n_b), df_p = Σ(n_i - 1); without any such variant the interval is
  undefined and every verdict is "cannot tell".

With ``m`` the equivalence margin (config ``analysis.equivalence_margin``), the interval [lo, hi] reads as
**higher** (lo > 0), **lower** (hi < 0), **tie** (-m <= lo and hi <= m: inside the noise and the margin) or
**unresolved** (it spans 0 and reaches beyond ±m). "a matches b" (the paper's "matches", "no sweep needed", "no
batch sampling needed") is a non-inferiority claim: it **holds** when lo >= -m, **does not hold** when hi < -m, and
otherwise cannot be told from these seeds.

The speed-up claim ("3x-15x faster than a static-margin sweep") reads ``speedup.json``: the sweep's steps divided by
the self-distilled variant's steps to the validation target, with the interval [sweep / ci_high, sweep / ci_low] of
the seeds' mean cost. It holds when the lower end is at least 3, does not hold when the upper end is below 3 or when
no seed reaches the target, and cannot be told when only some seeds reach it or from one seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from margin_retrieval.analysis.numbers.effectiveness import default_setting
from margin_retrieval.analysis.numbers.seeds import CONFIDENCE
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import variant_label

HOLDS, DOES_NOT_HOLD, CANNOT_TELL = "holds", "does not hold", "cannot tell"
SELF_DISTILLED = (("adaptive", "false"), ("adaptive", "true"), ("adaptive", "textbook"), ("distributed", "false"))
PAPER_FRACTION = 0.135  # "matches Margin-MSE with 13.5% of the training data"
PAPER_SPEEDUP = 3.0  # "3x-15x faster than a static-margin sweep": the claim holds from its lower end


@dataclass(frozen=True)
class Interval:
    difference: float
    low: float
    high: float
    method: str


def pooled_seed_sd(groups: Iterable[Sequence[float]]) -> tuple[float, int] | None:
    """The pooled standard deviation over seeds of the groups with two or more values, with its degrees of
    freedom Σ(n_i - 1); None when no group has two."""
    squares, df = 0.0, 0
    for values in groups:
        x = np.asarray(values, dtype=float)
        if len(x) >= 2:
            squares += float(((x - x.mean()) ** 2).sum())
            df += len(x) - 1
    return (math.sqrt(squares / df), df) if df else None


def difference_interval(a: Sequence[float], b: Sequence[float], pooled: tuple[float, int] | None,
                        confidence: float = CONFIDENCE) -> Interval:
    """The difference of the seed means of ``a`` and ``b`` with its two-sided t interval (module docstring)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    difference = float(x.mean() - y.mean())
    quantile = 1 - (1 - confidence) / 2
    if len(x) >= 2 and len(y) >= 2:
        va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se = math.sqrt(va + vb)
        if se == 0:
            return Interval(difference, difference, difference, "Welch over seeds")
        df = (va + vb) ** 2 / (va ** 2 / (len(x) - 1) + vb ** 2 / (len(y) - 1))
        half = float(sps.t.ppf(quantile, df)) * se
        return Interval(difference, difference - half, difference + half, "Welch over seeds")
    if pooled is None:
        return Interval(difference, math.nan, math.nan, "no seed spread measured")
    sd, df = pooled
    half = float(sps.t.ppf(quantile, df)) * sd * math.sqrt(1 / len(x) + 1 / len(y))
    return Interval(difference, difference - half, difference + half, "pooled seed σ")


def reading(interval: Interval, margin: float) -> str:
    """What the interval says about a - b: higher, lower, tie (inside ±margin) or unresolved."""
    low, high = interval.low, interval.high
    if math.isnan(low):
        return "unresolved"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    if -margin <= low and high <= margin:
        return "tie"
    return "unresolved"


def matches_verdict(interval: Interval, margin: float) -> str:
    """Non-inferiority: a is not worse than b by more than ``margin``."""
    if math.isnan(interval.low):
        return CANNOT_TELL
    if interval.low >= -margin:
        return HOLDS
    if interval.high < -margin:
        return DOES_NOT_HOLD
    return CANNOT_TELL


def speedup_verdict(sweep_steps: float, to_target: Mapping, at_least: float = PAPER_SPEEDUP) -> dict:
    """The speed-up in steps of a self-distilled variant against a sweep costing ``sweep_steps``, with its interval
    and verdict (module docstring); ``to_target`` is the variant's ``speedup.json`` entry of that name."""
    reached, seeds = to_target["n_reached"], to_target["n_seeds"]
    steps = to_target.get("steps") or {}
    out = {"n_reached": reached, "n_seeds": seeds, "cost": steps.get("mean") if reached == seeds else None,
           "speedup": math.nan, "low": math.nan, "high": math.nan}
    if reached == 0:
        return {**out, "verdict": DOES_NOT_HOLD, "why": "no seed reaches the target"}
    if reached < seeds:
        return {**out, "verdict": CANNOT_TELL, "why": f"{reached} of {seeds} seeds reach the target"}
    mean = steps["mean"]
    if not mean:
        return {**out, "verdict": CANNOT_TELL, "why": "the untrained model is at the target"}
    out["speedup"] = sweep_steps / mean
    if seeds < 2 or steps.get("ci_high") is None:
        return {**out, "verdict": CANNOT_TELL, "why": "one seed: no interval"}
    ci_low, ci_high = float(steps["ci_low"]), float(steps["ci_high"])
    out["low"] = sweep_steps / ci_high
    out["high"] = sweep_steps / ci_low if ci_low > 0 else math.inf
    if out["low"] >= at_least:
        return {**out, "verdict": HOLDS, "why": f"at least {at_least:g}x over the interval"}
    if out["high"] < at_least:
        return {**out, "verdict": DOES_NOT_HOLD, "why": f"below {at_least:g}x over the interval"}
    return {**out, "verdict": CANNOT_TELL, "why": f"the interval spans {at_least:g}x"}


# -- selecting the compared variants -------------------------------------------------------------------------------
def _setting(rows: pd.DataFrame, objective: str, in_batch: str, fraction: float = 1.0, negatives: str | None = None,
             batching: str = "random", tau: float | None = None) -> list[float]:
    """Per-seed values of one variant (empty when the grid lacks it)."""
    keep = (rows["objective"] == objective) & (rows["in_batch"] == in_batch) & np.isclose(rows["fraction"], fraction)
    keep &= rows["batching"] == batching
    if negatives is not None:
        keep &= rows["negatives"] == negatives
    keep &= rows["tau"].isna() if tau is None else np.isclose(rows["tau"].fillna(-1.0), tau)
    return [float(v) for v in rows.loc[keep].sort_values("seed")["value"]]


def _comparison(claim: str, collection: str, label: str, a: list[float], compared: str, b: list[float],
                pooled: tuple[float, int] | None, margin: float) -> dict:
    interval = difference_interval(a, b, pooled)
    return {"claim": claim, "collection": collection, "system": label, "compared_with": compared,
            "value": float(np.mean(a)), "n_seeds": len(a), "compared_value": float(np.mean(b)),
            "compared_seeds": len(b), "difference": interval.difference, "ci_low": interval.low,
            "ci_high": interval.high, "interval": interval.method, "reading": reading(interval, margin),
            "verdict": matches_verdict(interval, margin)}


def effectiveness_claims(results: pd.DataFrame, margin: float, negatives: str, model: str,
                         best_tau: Mapping[str, float] | None = None, measure: str = TEST_MEASURE,
                         reference: str = "margin_mse", collections: Sequence[str] = ()) -> list[dict]:
    """The effectiveness claims on every collection of ``results`` (a ``results.tsv`` table) for the student
    ``model``: each self-distilled variant matches the reference (full data; the smallest fraction up to 13.5%),
    the static margin at the τ validation chose for its in-batch setting (``best_tau``), and itself with clustered
    batches (random batches need no sampling). Each objective at its most common learning rate (its chosen one). Collections in the
    order of ``collections`` (the config's), then any others in the order of the table."""
    rows = results[(results["measure"] == measure) & (results["kind"] == "trained") & (results["model"] == model)]
    rows = default_setting(rows, columns=())
    out = []
    present = list(rows["collection"].unique())
    for collection in [c for c in collections if c in present] + [c for c in present if c not in collections]:
        here = rows[rows["collection"] == collection]
        groups = [g["value"].tolist() for _, g in here.groupby(
            ["objective", "in_batch", "tau", "fraction", "negatives", "batching", "lr"], dropna=False)]
        pooled = pooled_seed_sd(groups)
        ref = _setting(here, reference, "false", negatives=negatives)
        ref_label = variant_label(reference)
        for objective, in_batch in SELF_DISTILLED:
            label = variant_label(objective, in_batch)
            own = _setting(here, objective, in_batch, negatives=negatives)
            if own and ref:
                out.append(_comparison(f"matches {ref_label}", collection, label, own, ref_label, ref, pooled, margin))
            fractions = here.loc[(here["objective"] == objective) & (here["in_batch"] == in_batch)
                                 & (here["fraction"] <= PAPER_FRACTION + 1e-9) & (here["negatives"] == negatives)
                                 & (here["batching"] == "random"), "fraction"]
            if len(fractions) and ref:
                fraction = float(fractions.min())
                small = _setting(here, objective, in_batch, fraction=fraction, negatives=negatives)
                out.append(_comparison(f"matches {ref_label} with 13.5% of the data", collection,
                                       f"{label}, {100 * fraction:g}% data", small, f"{ref_label}, 100% data", ref,
                                       pooled, margin))
            tau = (best_tau or {}).get(in_batch)
            static = _setting(here, "static", in_batch, negatives=negatives, tau=tau) if tau is not None else []
            if own and static:
                out.append(_comparison("matches the static margin at the τ validation picks", collection, label,
                                       own, f"{variant_label('static', in_batch)} τ {tau:g}", static, pooled, margin))
            clustered = _setting(here, objective, in_batch, negatives=negatives, batching="clustered")
            if own and clustered:
                out.append(_comparison("needs no batch sampling (random matches clustered batches)", collection,
                                       f"{label}, random batches", own, "the same, clustered batches", clustered,
                                       pooled, margin))
    return out


def speedup_claims(speedup: Mapping) -> list[dict]:
    """Per self-distilled variant of ``speedup.json``: its speed-up in steps against the static sweep trained in
    full and against the successive-halving search over the same τ, each with its verdict."""
    out = []
    for entry in speedup.get("variants", []):
        sweep = entry.get("static_sweep")
        if not sweep or sweep["cost"].get("steps") is None:
            continue
        searches = [(f"{sweep['label']} ({len(sweep['taus'])} τ, each trained in full)", sweep["cost"]["steps"])]
        if sweep.get("halving"):
            searches.append((f"successive halving over the same τ (keeps τ {sweep['halving']['kept_tau']:g})",
                             sweep["halving"]["steps"]))
        for compared, steps in searches:
            verdict = speedup_verdict(float(steps), entry["to_target"])
            out.append({"claim": "3x-15x faster than a static-margin sweep", "system": entry["label"],
                        "compared_with": compared, "compared_steps": float(steps), "target": speedup["target"],
                        **verdict})
    return out
