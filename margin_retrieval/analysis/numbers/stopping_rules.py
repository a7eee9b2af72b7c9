"""Stopping rules replayed on full validation curves: where each rule would have stopped a run, which checkpoint it
would have kept, and at what cost, chosen on validation only.

A run trained to its cap with early stopping off (``training.early_stopping: false``) logs every validation. Walking
its curve with a :class:`~margin_retrieval.training.stopping.StoppingRule` (the trainer's own class, so the replay
decides exactly as a run under that rule would) gives the step where the run would have ended and the best
checkpoint it would have kept, whose value is its logged validation. A rule's cost is the steps it trains; its
regret is how far the kept validation falls below the best of the whole curve (what the full budget would keep). A
rule keeps the untrained model when no validation before its stop beat step 0 by more than its ``min_delta``; that
is a failure of the rule when the whole curve does rise above step 0 by more than the noise. The test queries are
never read.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from margin_retrieval.training.stopping import StoppingRule

Curve = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class Replay:
    end_step: int  # where the run ends: the rule's stop, else the curve's last step
    stopped: bool
    kept_step: int
    kept_value: float


def replay(curve: Curve, rule: StoppingRule) -> Replay:
    """The trainer's decisions on ``curve`` ((step, validation) in step order, starting at step 0) under ``rule``."""
    if not curve:
        raise ValueError("a curve needs at least the step-0 validation")
    best_value, best_step = -math.inf, 0
    for step, value in curve:
        if rule.improves(value, best_value):
            best_value, best_step = value, step
        if rule.should_stop(step, best_step):
            return Replay(step, True, best_step, best_value)
    return Replay(curve[-1][0], False, best_step, best_value)


def candidate_rules(min_deltas: Iterable[float], patience_steps: Iterable[int],
                    min_steps: Iterable[int]) -> dict[str, StoppingRule]:
    """Every combination, named ``min_delta=…/patience=…/min_steps=…``."""
    return {f"min_delta={delta:g}/patience={patience}/min_steps={minimum}": StoppingRule(delta, minimum, patience)
            for delta, patience, minimum in itertools.product(min_deltas, patience_steps, min_steps)}


def replay_table(curves: Mapping[str, Curve], rules: Mapping[str, StoppingRule], noise: float) -> list[dict]:
    """One row per rule and run: where it ends, what it keeps, its regret; ``untrained_kept_wrongly`` when it keeps
    step 0 although the curve rises above step 0 by more than ``noise``."""
    rows = []
    for (name, rule), (run, curve) in itertools.product(rules.items(), curves.items()):
        result = replay(curve, rule)
        best = max(value for _, value in curve)
        rows.append({
            "rule": name, "run": run, "end_step": result.end_step, "last_step": curve[-1][0],
            "stopped": result.stopped, "kept_step": result.kept_step, "kept_value": result.kept_value,
            "regret": best - result.kept_value,
            "untrained_kept_wrongly": result.kept_step == 0 and best > curve[0][1] + noise,
        })
    return rows


def rule_summary(rows: Sequence[Mapping]) -> list[dict]:
    """Per rule, over its runs: mean and largest regret, share of the full budget trained, runs stopped early, runs
    that kept step 0 wrongly; sorted by mean regret, then by steps trained."""
    summary = []
    for name, group in itertools.groupby(sorted(rows, key=lambda row: row["rule"]), key=lambda row: row["rule"]):
        group = list(group)
        summary.append({
            "rule": name, "runs": len(group),
            "mean_regret": sum(row["regret"] for row in group) / len(group),
            "max_regret": max(row["regret"] for row in group),
            "budget_share": sum(row["end_step"] for row in group) / sum(row["last_step"] for row in group),
            "stopped_early": sum(row["stopped"] for row in group),
            "untrained_kept_wrongly": sum(row["untrained_kept_wrongly"] for row in group),
        })
    return sorted(summary, key=lambda row: (round(row["mean_regret"], 6), row["budget_share"], row["rule"]))
