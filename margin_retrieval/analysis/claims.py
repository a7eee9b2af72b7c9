"""The claims table (``claims.md``, ``claims.tsv``): the paper's claims as holds / does not hold / cannot tell, with
the numbers and intervals behind each verdict (``numbers.claims``); ``build_claims`` is the step the Snakemake
script runs.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

from margin_retrieval.analysis.numbers.claims import PAPER_SPEEDUP, effectiveness_claims, speedup_claims
from margin_retrieval.analysis.numbers.seeds import CONFIDENCE
from margin_retrieval.analysis.results import TEST_MEASURE, read_results
from margin_retrieval.jobs.io import atomic_path, read_json, write_tsv

PathLike = str | os.PathLike
COLUMNS = ("claim", "collection", "system", "compared_with", "quantity", "value", "n_seeds", "compared_value",
           "compared_seeds", "estimate", "ci_low", "ci_high", "interval", "reading", "verdict")


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "∞" if value == math.inf else f"{value:.{digits}f}"


def _interval(low: float, high: float, digits: int = 3) -> str:
    return "–" if math.isnan(low) else f"[{_number(low, digits)}, {_number(high, digits)}]"


def _speedup(row: Mapping) -> str:
    if math.isnan(row["speedup"]):
        return "–"
    return f"{row['speedup']:.1f}x" + ("" if math.isnan(row["low"]) else f" {_interval(row['low'], row['high'], 1)}")


def tsv_rows(effectiveness: Sequence[Mapping], speedups: Sequence[Mapping]) -> list[list]:
    rows = [[r["claim"], r["collection"], r["system"], r["compared_with"], f"{TEST_MEASURE} difference",
             r["value"], r["n_seeds"], r["compared_value"], r["compared_seeds"], r["difference"], r["ci_low"],
             r["ci_high"], r["interval"], r["reading"], r["verdict"]] for r in effectiveness]
    rows += [[r["claim"], "validation", r["system"], r["compared_with"], "speed-up in steps to the target",
              r["cost"], r["n_seeds"], r["compared_steps"], "", r["speedup"], r["low"], r["high"],
              "the seeds' mean cost to the target", r["why"], r["verdict"]] for r in speedups]
    return [["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row] for row in rows]


def markdown(effectiveness: Sequence[Mapping], speedups: Sequence[Mapping], margin: float) -> str:
    lines = ["# The paper's claims, read against the seed noise", ""]
    if effectiveness:
        lines += [f"Test {TEST_MEASURE}, mean over seeds (n). Δ = system − compared, with its {100 * CONFIDENCE:g}% "
                  "interval over seeds (Welch where both have several seeds, else the grid's pooled seed σ). "
                  f"Reading: higher / lower (the interval excludes 0), tie (inside ±{margin:g}), unresolved. "
                  f"A \"matches\" claim holds when Δ's interval stays above −{margin:g}, does not hold when it lies "
                  f"below −{margin:g}, and cannot be told otherwise.", "",
                  "| claim | collection | system | compared with | system (n) | compared (n) | Δ [interval] | "
                  "reading | verdict |", "|---|---|---|---|---|---|---|---|---|"]
        for r in effectiveness:
            lines.append(f"| {r['claim']} | {r['collection']} | {r['system']} | {r['compared_with']} | "
                         f"{_number(r['value'])} ({r['n_seeds']}) | {_number(r['compared_value'])} "
                         f"({r['compared_seeds']}) | {r['difference']:+.3f} {_interval(r['ci_low'], r['ci_high'])} "
                         f"| {r['reading']} | {r['verdict']} |")
        lines.append("")
    if speedups:
        target = speedups[0]["target"]
        lines += [f"Speed-up in training steps to validation {TEST_MEASURE} {_number(target)} (speedup.json): "
                  "the compared search's steps over the system's mean steps to the target, with the interval from "
                  f"the seeds' cost interval; the claim holds from {PAPER_SPEEDUP:g}x.", "",
                  "| system | compared with | steps to target (seeds reaching) | compared steps | speed-up "
                  "[interval] | verdict | why |", "|---|---|---|---|---|---|---|"]
        for r in speedups:
            lines.append(f"| {r['system']} | {r['compared_with']} | {_number(r['cost'], 1)} ({r['n_reached']} of "
                         f"{r['n_seeds']}) | {r['compared_steps']:g} | {_speedup(r)} | {r['verdict']} | {r['why']} |")
        lines.append("")
    if not effectiveness and not speedups:
        lines += ["This grid has none of the compared pairs (a self-distilled variant with Margin-MSE, the static "
                  "sweep, clustered batches or a fraction up to 13.5%).", ""]
    return "\n".join(lines)


def best_taus(speedup: Mapping) -> dict[str, float]:
    """The τ that validation picks in each in-batch setting's static sweep (``speedup.json``)."""
    return {entry["in_batch"]: float(entry["static_sweep"]["best_tau"]) for entry in speedup.get("variants", [])
            if entry.get("static_sweep")}


def build_claims(results_path: PathLike, speedup_path: PathLike, analysis: Mapping, negatives: str, model: str,
                 markdown_path: PathLike, tsv_path: PathLike, collections: Sequence[str] = ()) -> None:
    margin = float(analysis.get("equivalence_margin", 0.01))
    speedup = read_json(speedup_path)
    effectiveness = effectiveness_claims(read_results(results_path), margin, negatives, model, best_taus(speedup),
                                         reference=analysis.get("reference_objective", "margin_mse"),
                                         collections=collections)
    speedups = speedup_claims(speedup)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(markdown(effectiveness, speedups, margin), encoding="utf-8")
    write_tsv(tsv_path, COLUMNS, tsv_rows(effectiveness, speedups))
