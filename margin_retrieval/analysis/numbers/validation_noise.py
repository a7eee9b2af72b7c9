"""How large a difference between two validations of one run is noise, from its training log alone.

Two estimates, both in nDCG@10 units:

- within-run noise: how much validation moves from one validation to the next once training has settled;
- the paired bootstrap: how much the mean difference between two validations (best vs final, step 0 vs best) moves
  when the validation queries are resampled, i.e. how much of it a different draw of ~50 queries could undo.

A difference that is not several times these is not evidence that one checkpoint beats the other. The per-query
values are the ``per_query`` field of each ``validation`` event (``ValidationResult.log_values``); logs written
before it existed still give the within-run noise.
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from margin_retrieval.analysis.results import TEST_MEASURE as MEASURE  # also the key of a validation event's mean
from margin_retrieval.analysis.results import write_frame

PathLike = str | os.PathLike
COLUMNS = ["run", "validations", "queries", "within_run_sd", "start_value", "best_step", "best_value", "final_step",
           "final_value", "best_minus_start", "best_vs_start_sd", "best_minus_final", "best_vs_final_sd"]


def within_run_noise(values: Sequence[float]) -> float:
    """The within-run σ of validation: for the validations ``values`` of one run in step order, take the last half
    (``values[len(values) // 2:]``), their successive differences d_k = v_(k+1) - v_k, and return
    ``sd(d, ddof=1) / sqrt(2)``.

    If each late value is a level plus independent noise of σ, every difference has variance 2σ²; the sample
    standard deviation subtracts the mean difference, so a steady linear drift over the late half is not counted as
    noise. NaN when the last half has fewer than three values (fewer than five validations in all).
    """
    late = np.asarray(values, dtype=float)[len(values) // 2:]
    if len(late) < 3:
        return math.nan
    return float(np.diff(late).std(ddof=1) / math.sqrt(2))


def paired_bootstrap_sd(a: Mapping[str, float], b: Mapping[str, float], samples: int = 2000, seed: int = 0) -> float:
    """σ of the mean paired difference mean_q (a[q] - b[q]) over ``samples`` bootstrap resamples of the queries
    (drawn with replacement, as many as there are; ``numpy.random.default_rng(seed)``): the standard deviation
    (ddof=1) of the resampled means. ``a`` and ``b`` map the same query ids to per-query values."""
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise ValueError(f"paired bootstrap: the two validations have different queries, e.g. {only[:3]}")
    if not a:
        raise ValueError("paired bootstrap: no query")
    if samples < 2:
        raise ValueError(f"paired bootstrap: samples must be at least 2, got {samples}")
    queries = sorted(a)
    differences = np.array([a[q] - b[q] for q in queries], dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(queries), size=(samples, len(queries)))
    return float(differences[draws].mean(axis=1).std(ddof=1))


def read_validations(path: PathLike) -> list[dict]:
    """The ``validation`` events of a ``train_log.jsonl``, in file order (step order: a resumed job truncates its
    log to the checkpoint before writing on)."""
    events = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not JSON ({error.msg})") from None
            if record.get("event") == "validation":
                if MEASURE not in record:
                    raise ValueError(f"{path}, line {number}: a validation event without {MEASURE}")
                events.append(record)
    return events


def run_noise(validations: Sequence[Mapping], samples: int = 2000, seed: int = 0) -> dict:
    """The noise figures of one run from its validation events (``read_validations``); see ``noise_table``."""
    values = [float(v[MEASURE]) for v in validations]
    row = {"validations": len(values), "queries": None, "within_run_sd": _number(within_run_noise(values))}
    if not values:
        return row
    best = max(range(len(values)), key=lambda i: (values[i], -i))  # the first maximum: what early stopping keeps
    start = validations[0] if validations[0].get("step") == 0 else None
    final = validations[-1]
    row |= {"start_value": None if start is None else values[0], "best_step": validations[best].get("step"),
            "best_value": values[best], "final_step": final.get("step"), "final_value": values[-1],
            "best_minus_start": None if start is None else values[best] - values[0],
            "best_minus_final": values[best] - values[-1], "best_vs_start_sd": None, "best_vs_final_sd": None}
    if all("per_query" in v for v in validations):
        per_query = validations[best]["per_query"]
        row["queries"] = len(per_query)
        row["best_vs_final_sd"] = paired_bootstrap_sd(per_query, final["per_query"], samples, seed)
        if start is not None:
            row["best_vs_start_sd"] = paired_bootstrap_sd(per_query, start["per_query"], samples, seed)
    return row


def noise_table(logs: Mapping[str, PathLike], samples: int = 2000, seed: int = 0) -> list[dict]:
    """One row per run (``logs`` maps a run's name to its ``train_log.jsonl``), in the mapping's order:

    ``run``; ``validations`` (events in the log); ``queries`` (validation queries, None for a log without per-query
    values); ``within_run_sd`` (``within_run_noise``, None when too few validations); ``start_value``,
    ``best_step``/``best_value`` (the first maximum, the exported model), ``final_step``/``final_value`` (the last
    validation); ``best_minus_start`` and ``best_minus_final`` with their paired-bootstrap σ ``best_vs_start_sd`` and
    ``best_vs_final_sd`` (``paired_bootstrap_sd``; None without per-query values or without a step-0 validation).
    A log without any validation gives only ``run``, ``validations`` (0), ``queries`` and ``within_run_sd``.
    """
    rows = []
    for run, path in logs.items():
        validations = read_validations(path)
        try:
            rows.append({"run": run, **run_noise(validations, samples, seed)})
        except ValueError as error:  # e.g. two validations over different queries
            raise ValueError(f"{path}: {error}") from None
    return rows


def write_noise_table(logs: Mapping[str, PathLike], path: PathLike) -> None:
    """``noise_table(logs)`` as a TSV with the columns ``COLUMNS`` (a value a run lacks is a blank cell)."""
    write_frame(pd.DataFrame(noise_table(logs), columns=COLUMNS), path)


def _number(value: float) -> float | None:
    """None for NaN, so that the table is valid JSON."""
    return None if math.isnan(value) else value


def between_runs(logs: Mapping[str, PathLike], samples: int = 2000, seed: int = 0) -> list[dict]:
    """One row per pair of runs validated on the same queries: the difference of their best validations and its
    paired-bootstrap σ over those queries (how far apart two trained models must be on validation to be told
    apart); logs without per-query values are skipped."""
    best = {}
    for run, path in logs.items():
        validations = [v for v in read_validations(path) if "per_query" in v]
        if validations:
            top = max(validations, key=lambda v: float(v[MEASURE]))
            best[run] = (float(top[MEASURE]), top["per_query"])
    rows = []
    runs = list(best)
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            if set(best[a][1]) != set(best[b][1]):
                continue
            rows.append({"run_a": a, "run_b": b, "queries": len(best[a][1]), "difference": best[a][0] - best[b][0],
                         "paired_sd": paired_bootstrap_sd(best[a][1], best[b][1], samples, seed)})
    return rows
