"""What a practitioner's τ search and a noise-aware target would cost, computed from logged validation curves.

A curve is a run's validations as ``[(step, value), ...]`` in step order, ending where the run stopped.

``successive_halving`` replays a successive-halving search (Jamieson & Talwalkar 2016) over the static-margin runs of
a τ sweep: rung k gives every surviving τ a budget of ``first_rung * eta**k`` steps; a τ is scored at a rung by its
best validation within the budget (what a search that keeps the best checkpoint would see), and the best
``ceil(n / eta)`` go on (ties: the earlier τ in the given order). When one τ is left it trains to the end of its
logged run. Each τ is charged the steps it trained: its budget at the rung that pruned it, or the end of its run if
that came first; the survivor its whole run. The search's cost is their sum.

``sustained_crossing`` reads the cost to a validation target off a noisy curve: the first crossing of the raw curve
counts a lucky validation, and whether a seed crosses at all is then chance, so a crossing counts only where the
curve holds the target for some validations in a row; ``sustained_level`` is the highest target a curve holds so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

Curve = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class HalvingResult:
    kept: str  # the τ (key of the curves) the search keeps
    cost: int  # steps trained over all τ
    steps: dict[str, int]  # steps each τ trained before it was pruned (the kept τ: its whole run)
    rungs: list[list[str]]  # the τ alive at each rung, in order


def best_within(curve: Curve, budget: int) -> float:
    """The best validation at a step <= ``budget`` (-inf when there is none)."""
    return max((value for step, value in curve if step <= budget), default=-math.inf)


def last_step(curve: Curve) -> int:
    return max(step for step, _ in curve) if curve else 0


def successive_halving(curves: Mapping[str, Curve], first_rung: int, eta: int = 2) -> HalvingResult:
    """The τ a successive-halving search over ``curves`` keeps, and what it trains (see the module docstring)."""
    if first_rung < 1 or eta < 2:
        raise ValueError(f"first_rung must be >= 1 and eta >= 2, got {first_rung} and {eta}")
    if not curves:
        raise ValueError("successive halving needs at least one curve")
    alive = list(curves)
    steps: dict[str, int] = {}
    rungs: list[list[str]] = []
    budget = first_rung
    while len(alive) > 1:
        rungs.append(list(alive))
        ranked = sorted(alive, key=lambda tau: -best_within(curves[tau], budget))  # stable: ties keep input order
        survivors = ranked[: math.ceil(len(alive) / eta)]
        for tau in alive:
            if tau not in survivors:
                steps[tau] = min(budget, last_step(curves[tau]))
        alive = [tau for tau in alive if tau in survivors]
        budget *= eta
    rungs.append(list(alive))
    kept = alive[0]
    steps[kept] = last_step(curves[kept])
    return HalvingResult(kept, sum(steps.values()), {tau: steps[tau] for tau in curves}, rungs)


def sustained_crossing(curve: Curve, target: float, hold: int = 2) -> int | None:
    """The first step from which ``hold`` validations in a row (this one included) are at or above ``target``; at the
    end of a run fewer may follow, and then all that follow must be."""
    if hold < 1:
        raise ValueError(f"hold must be >= 1, got {hold}")
    values = [value for _, value in curve]
    for i, (step, _) in enumerate(curve):
        if all(value >= target for value in values[i : i + hold]):
            return step
    return None


def sustained_level(curve: Curve, hold: int = 2) -> float | None:
    """The highest target that ``sustained_crossing(curve, target, hold)`` reaches: the best minimum over ``hold``
    validations in a row (at the end of a run, over those that follow); None for an empty curve."""
    if hold < 1:
        raise ValueError(f"hold must be >= 1, got {hold}")
    values = [value for _, value in curve]
    return max((min(values[i : i + hold]) for i in range(len(values))), default=None)
