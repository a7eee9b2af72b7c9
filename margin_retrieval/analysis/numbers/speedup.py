"""The cost of reaching a validation target, self-distillation vs a static-margin sweep and Margin-MSE, in units
that a busy machine does not change.

Costs are counted in training **steps** and **triples** (read from the training logs) and in **CPU seconds**: the
training job's CPU time (Snakemake benchmark ``cpu_time``) divided by its steps gives a per-step cost measured once
per run, so the cost to the target is steps x that per-step cost; wall-clock seconds, which depend on whatever
else ran, are not used. Per self-distilled variant (its seeds averaged, with a 95% t interval): the cost to the
target (the first validation from which ``hold`` validations in a row stay at or above it,
``halving.sustained_crossing``: a single lucky validation does not count); the static sweep of the same in-batch setting (same model, negatives,
batching and fraction, ``train_logs.full_runs``), whose cost is the **full** training of every τ tried (a sweep
must train them all; with seeds, each τ's cost averaged over its seeds, then summed over τ); and the reference
(Margin-MSE): its cost to the target plus, in CPU seconds, the teacher's scoring of the training triples.
CPU seconds are compared only where every run of a comparison was trained on one CPU kind (a slower CPU is not a
costlier method): otherwise they are None there and ``cpu_kinds`` names the kinds; steps and triples still compare.
Speed-up = cost / self-distilled cost to target, per unit. Beside the full sweep, the steps of a successive-halving
search over its τ, replayed from their logged curves (``halving``), for a sweep as a practitioner would run it.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from margin_retrieval.analysis.numbers.halving import successive_halving, sustained_crossing, sustained_level
from margin_retrieval.analysis.numbers.seeds import mean_ci
from margin_retrieval.analysis.numbers.train_logs import (
    best_static, by_variant, full_runs, mean_best, total_steps,
)
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import variant_label

SELF_DISTILLED = ("adaptive", "distributed")
UNITS = ("steps", "triples", "cpu_seconds")


def _cpu_per_step(run: Mapping) -> float | None:
    benchmark = run.get("benchmark") or {}
    steps = total_steps(run)
    cpu = benchmark.get("cpu_seconds")
    return cpu / steps if cpu is not None and steps > 0 else None


def cpu_kinds(runs: Sequence[Mapping]) -> list[str]:
    """The CPUs the runs were trained on, as far as their logs or the archive name them."""
    return sorted({run["cpu"] for run in runs if run.get("cpu")})


def _one_cpu_kind(comparison: dict, runs: Sequence[Mapping]) -> None:
    """Name the CPU kinds of a comparison's runs (the self-distilled seeds and the compared runs); with several,
    its CPU-second cost, speed-up and per-τ parts are not comparable and become None."""
    comparison["cpu_kinds"] = cpu_kinds(runs)
    if len(comparison["cpu_kinds"]) > 1:
        comparison["cost"]["cpu_seconds"] = comparison["speedup"]["cpu_seconds"] = None
        for part in comparison.get("per_tau", {}).values():
            part["cpu_seconds"] = None


def _curve(run: Mapping) -> list[tuple[int, float]]:
    validation = run["validation"].sort_values("step")
    return list(zip(validation["step"].astype(int), validation[TEST_MEASURE].astype(float)))


def cost_to_target(run: Mapping, target: float, hold: int = 2) -> dict[str, float] | None:
    """Steps, triples and CPU seconds until the first validation from which ``hold`` validations in a row are at or
    above ``target`` (``hold`` 1: the first crossing); None if never."""
    curve = _curve(run)
    step = sustained_crossing(curve, target, hold)
    if step is None:
        return None
    validation = run["validation"]
    triples = float(validation.loc[validation["step"] == step, "triples_seen"].iloc[0])
    per_step = _cpu_per_step(run)
    return {"steps": float(step), "triples": triples, "cpu_seconds": None if per_step is None else step * per_step}


def total_cost(run: Mapping) -> dict[str, float | None]:
    """Steps, triples and CPU seconds of the whole training job."""
    end = run.get("end") or {}
    triples = end.get("triples_seen")
    if triples is None:
        logged = run["train"]["triples_seen"].dropna()
        triples = float(logged.max()) if len(logged) else 0.0
    return {"steps": total_steps(run), "triples": float(triples),
            "cpu_seconds": (run.get("benchmark") or {}).get("cpu_seconds")}


def _summary(costs: Sequence[Mapping | None]) -> dict:
    """Per unit, the mean over seeds with its interval, of the seeds that reached the target."""
    reached = [c for c in costs if c is not None]
    out = {"n_seeds": len(costs), "n_reached": len(reached)}
    for unit in UNITS:
        values = [c[unit] for c in reached if c.get(unit) is not None]
        out[unit] = mean_ci(values) if values and len(values) == len(reached) else None
    return out


def _mean(summary: Mapping | None, unit: str) -> float | None:
    return None if summary is None or summary.get(unit) is None else summary[unit]["mean"]


def _ratios(cost: Mapping[str, float | None], own: Mapping) -> dict[str, float | None]:
    out = {}
    for unit in UNITS:
        time = _mean(own, unit)
        out[unit] = cost[unit] / time if cost.get(unit) is not None and time is not None and time > 0 else None
    return out


def _sweep(sweep: Sequence[dict], in_batch: str, target: float, hold: int, own: Mapping) -> dict:
    """The static sweep's cost: the sum over τ of each τ's full cost, averaged over that τ's seeds (the expected
    cost of training every τ once; a τ with more seeds than the others, e.g. a headline τ, counts once)."""
    taus = sorted({float(r["tau"]) for r in sweep})
    per_tau = {f"{tau:g}": {unit: _mean(_summary([total_cost(r) for r in sweep if float(r["tau"]) == tau]), unit)
                            for unit in UNITS} for tau in taus}
    cost = {}
    for unit in UNITS:
        values = [costs[unit] for costs in per_tau.values()]
        cost[unit] = None if None in values else sum(values)
    best = best_static(sweep, in_batch)
    return {"label": variant_label("static", in_batch) + " sweep", "taus": taus, "per_tau": per_tau,
            "cost": cost, "best_tau": float(best[0]["tau"]), "best_value": mean_best(best),
            "reached": any(cost_to_target(r, target, hold) is not None for r in sweep), "speedup": _ratios(cost, own),
            "halving": _halving(sweep, own)}


def _halving(sweep: Sequence[dict], own: Mapping, eta: int = 2) -> dict | None:
    """What a practitioner's successive-halving search over the sweep's τ would have trained (``halving``), replayed
    on each τ's logged curve (its lowest seed), its first rung one validation interval: the τ it keeps, the steps
    each τ trained and their sum, and the speed-up in steps of the self-distilled run against that search."""
    first: dict[str, dict] = {}
    for run in sorted(sweep, key=lambda r: r.get("seed", 0)):
        first.setdefault(f"{float(run['tau']):g}", run)
    curves = {tau: [(int(step), float(value)) for step, value in
                    zip(run["validation"]["step"], run["validation"][TEST_MEASURE])] for tau, run in first.items()}
    intervals = sorted({step for curve in curves.values() for step, _ in curve if step > 0})
    if not intervals:
        return None
    search = successive_halving(curves, first_rung=intervals[0], eta=eta)
    steps = _mean(own, "steps")
    return {"first_rung": intervals[0], "eta": eta, "kept_tau": float(search.kept), "steps": search.cost,
            "per_tau_steps": search.steps, "kept_best_value": mean_best([first[search.kept]]),
            "speedup_steps": search.cost / steps if steps else None}


def _reference(runs: Sequence[dict], target: float, hold: int, teacher_cpu: float | None, own: Mapping) -> dict:
    summary = _summary([cost_to_target(r, target, hold) for r in runs])
    reached = summary["n_reached"] == summary["n_seeds"]
    cost = {unit: _mean(summary, unit) if reached else None for unit in UNITS}
    if cost["cpu_seconds"] is not None:
        cost["cpu_seconds"] += teacher_cpu or 0.0
    return {"label": runs[0]["label"], "objective": runs[0]["objective"], "in_batch": runs[0]["in_batch"],
            "to_target": summary, "teacher_cpu_seconds": teacher_cpu, "cost": cost,
            "best_value": mean_best(runs), "speedup": _ratios(cost, own)}


def _held(runs: Sequence[dict], hold: int) -> float:
    """Mean over seeds of the highest validation level each run holds for ``hold`` validations in a row."""
    levels = [level for level in (sustained_level(_curve(r), hold) for r in runs) if level is not None]
    return sum(levels) / len(levels) if levels else -math.inf


def _target(variants: Mapping, sweeps: Mapping, reference: Sequence[dict] | None, hold: int) -> float | None:
    compared = [_held(seeds, hold) for seeds in variants.values()]
    compared += [_held(best_static(sweep, in_batch), hold) for in_batch, sweep in sweeps.items()]
    compared += [_held(reference, hold)] if reference else []
    compared = [v for v in compared if math.isfinite(v)]
    return min(compared) if compared else None


def speedup_numbers(runs: Sequence[dict], teacher_cpu_seconds: float | None = None, target: float | None = None,
                    reference_objective: str = "margin_mse", hold: int = 2) -> dict:
    """The speed-up comparison at full data (module docstring). A run reaches the target where ``hold`` validations
    in a row are at or above it. ``target`` None: the lowest, over the compared variants (self-distilled, best static
    τ per sweep, reference), of the mean over seeds of the highest level a run holds that long, so each reaches it on
    average. Speed-ups are None where undefined (target not reached by every seed, no CPU time, CPU seconds of
    several CPU kinds, or reached before any training at step 0)."""
    full = full_runs(runs)
    variants = by_variant([r for r in full if r["objective"] in SELF_DISTILLED])
    sweeps: dict[str, list[dict]] = {}
    for run in full:
        if run["objective"] == "static":
            sweeps.setdefault(run["in_batch"], []).append(run)
    references = by_variant([r for r in full if r["objective"] == reference_objective and r["in_batch"] == "false"])
    reference = next(iter(references.values()), None)
    source = "config"
    if target is None:
        target = _target(variants, sweeps, reference, hold)
        source = f"lowest mean level the compared runs hold for {hold} validations in a row"
    numbers = {"target": target, "target_source": source, "hold": hold, "measure": f"validation {TEST_MEASURE}",
               "units": UNITS,
               "teacher_cpu_seconds": teacher_cpu_seconds, "variants": []}
    if target is None:
        return numbers
    for seeds in sorted(variants.values(), key=lambda s: s[0]["label"]):
        own = _summary([cost_to_target(r, target, hold) for r in seeds])
        entry = {"label": seeds[0]["label"], "objective": seeds[0]["objective"], "in_batch": seeds[0]["in_batch"],
                 "best_value": mean_best(seeds), "to_target": own, "total": [total_cost(r) for r in seeds],
                 "cpu_kinds": cpu_kinds(seeds), "static_sweep": None, "reference": None}
        if len(entry["cpu_kinds"]) > 1:
            own["cpu_seconds"] = None  # its seeds' CPU seconds were counted on different CPUs
        if own["n_reached"] < own["n_seeds"]:
            own = {unit: None for unit in UNITS}  # not every seed reached it: no fair mean cost
        if _mean(own, "steps") == 0:
            entry["note"] = "target reached by the untrained model (step 0); speed-ups undefined"
        if sweeps.get(entry["in_batch"]):
            entry["static_sweep"] = _sweep(sweeps[entry["in_batch"]], entry["in_batch"], target, hold, own)
            _one_cpu_kind(entry["static_sweep"], [*seeds, *sweeps[entry["in_batch"]]])
        if reference:
            entry["reference"] = _reference(reference, target, hold, teacher_cpu_seconds, own)
            _one_cpu_kind(entry["reference"], [*seeds, *reference])
        numbers["variants"].append(entry)
    return numbers


def speedup_rows(numbers: Mapping) -> list[list]:
    """One row per self-distilled variant x comparison x unit: method, compared_with, target, unit, the two costs
    and the speed-up (the TSV next to the figure)."""
    rows = []
    for entry in numbers["variants"]:
        for key in ("static_sweep", "reference"):
            other = entry[key]
            if other is None:
                continue
            own = entry["to_target"]
            every_seed = own["n_reached"] == own["n_seeds"]
            for unit in UNITS:
                rows.append([entry["label"], other["label"], numbers["target"], unit,
                             _mean(own, unit) if every_seed else None, other["cost"][unit],
                             other["speedup"][unit]])
    return rows


def finite(value):
    """``value`` with every NaN (a one-seed interval) replaced by None, so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
