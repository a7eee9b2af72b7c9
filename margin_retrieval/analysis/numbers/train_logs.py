"""Training runs with their logs (``train_log.jsonl``) and job benchmarks, and the selections the training-log
figures and the speed-up share (full-data runs, best static τ on validation)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import (
    blank, normalise, system_label, trained_runs, variant_id, varying_columns,
)

PathLike = str | os.PathLike
TRAIN_COLUMNS = ["step", "triples_seen", "seconds", "loss", "lr", "target_mean", "target_min", "target_max"]
VALIDATION_COLUMNS = ["step", "triples_seen", "seconds", TEST_MEASURE]


def read_train_log(path: PathLike) -> dict:
    """A ``train_log.jsonl`` as ``{"train": DataFrame, "validation": DataFrame, "start": dict | None,
    "end": dict | None}`` (a resumed job has one start record, of its first attempt)."""
    events: dict[str, list[dict]] = {"train": [], "validation": [], "start": [], "end": []}
    with open(path) as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if record.get("event") in events:
                    events[record["event"]].append(record)
    train = pd.DataFrame(events["train"], columns=TRAIN_COLUMNS)
    validation = pd.DataFrame(events["validation"], columns=VALIDATION_COLUMNS)
    for frame in (train, validation):
        for column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return {"train": train, "validation": validation, "start": events["start"][0] if events["start"] else None,
            "end": events["end"][-1] if events["end"] else None}


def read_benchmark(path: PathLike | None) -> dict | None:
    """CPU seconds (``cpu_time``) and wall-clock seconds (``s``) of a Snakemake benchmark file (means over
    repeats); None when there is no file."""
    if blank(path) or not Path(path).exists():
        return None
    table = pd.read_csv(path, sep="\t")
    if table.empty:
        return None
    cpu = pd.to_numeric(table.get("cpu_time"), errors="coerce") if "cpu_time" in table else None
    return {"cpu_seconds": None if cpu is None or cpu.isna().all() else float(cpu.mean()),
            "wall_seconds": float(table["s"].mean())}


def load_runs(runs: pd.DataFrame | Sequence[Mapping]) -> list[dict]:
    """Training runs with their logs, from the trained rows of the systems manifest (columns as
    ``systems.read_manifest``; ``train_log`` and optionally ``train_benchmark`` paths). Each result is the run's
    columns plus ``variant``, ``label``, ``train``, ``validation``, ``end``, ``benchmark`` and ``cpu`` (the CPU its
    log names, else the manifest's, else None)."""
    frame = runs if isinstance(runs, pd.DataFrame) else pd.DataFrame([normalise(r) for r in runs])
    frame = trained_runs(frame) if "kind" in frame else frame
    varying = varying_columns(frame)
    loaded = []
    for run in frame.to_dict("records"):
        if blank(run.get("train_log")):
            raise ValueError(f"systems manifest: {run['system']} has no training log")
        log = read_train_log(run["train_log"])
        loaded.append({**run, "variant": variant_id(run["system"]), **log,
                       "benchmark": read_benchmark(run.get("train_benchmark")),
                       "cpu": (log["start"] or {}).get("cpu") or run.get("cpu") or None,
                       "label": system_label({**run, "kind": "trained"}, varying=varying)})
    return loaded


def best_value(run: Mapping) -> float | None:
    """The best validation value of a run: its end record's (the kept checkpoint's: with ``training.min_delta`` a
    later validation may exceed it by less than that), else, for a run without one, its log's maximum."""
    end = run.get("end") or {}
    if end.get("best_value") is not None:
        return float(end["best_value"])
    values = run["validation"][TEST_MEASURE].dropna()
    return float(values.max()) if len(values) else None


def total_steps(run: Mapping) -> float:
    """Training steps the run took (its end record, else the last logged step)."""
    end = run.get("end") or {}
    if end.get("step") is not None:
        return float(end["step"])
    logged = pd.concat([run["train"]["step"], run["validation"]["step"]]).dropna()
    return float(logged.max()) if len(logged) else 0.0


def full_runs(runs: Sequence[dict], model: str | None = None) -> list[dict]:
    """The runs of one model (default: the first) at its largest training fraction, at the grid's default
    negatives and batching (the most common value of each), so one question's figure does not mix another's."""
    if model is None and runs:
        model = sorted({str(r.get("model")) for r in runs})[0]
    runs = [r for r in runs if str(r.get("model")) == model]
    if not runs:
        return []
    top = max(r["fraction"] for r in runs)
    runs = [r for r in runs if math.isclose(r["fraction"], top)]
    for column in ("negatives", "batching"):
        values = pd.Series([str(r.get(column, "")) for r in runs])
        if values.nunique() > 1:
            common = values.value_counts().sort_index().idxmax()
            runs = [r for r in runs if str(r.get(column, "")) == common]
    return runs


def by_variant(runs: Sequence[dict]) -> dict[str, list[dict]]:
    """The runs grouped by variant (the seeds of one configuration), in seed order."""
    groups: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: (r["variant"], r.get("seed", 0))):
        groups.setdefault(run["variant"], []).append(run)
    return groups


def mean_best(runs: Sequence[dict]) -> float:
    """Mean over seeds of the best validation value (-inf when no run has one): how validation ranks variants."""
    values = [v for v in map(best_value, runs) if v is not None]
    return sum(values) / len(values) if values else -math.inf


def best_static(runs: Sequence[dict], in_batch: str) -> list[dict]:
    """The seeds of the static τ with the best mean validation value, for one in-batch setting (ties: smaller τ).
    Validation chooses; the test queries never do."""
    sweep = by_variant([r for r in runs if r["objective"] == "static" and r["in_batch"] == in_batch])
    if not sweep:
        return []
    return max(sweep.values(), key=lambda seeds: (mean_best(seeds), -float(seeds[0]["tau"] or 0)))


def curve_runs(runs: Sequence[dict]) -> list[dict]:
    """Full-data runs for the curves: every non-static run plus the best static τ per in-batch setting."""
    full = full_runs(runs)
    chosen = [r for r in full if r["objective"] != "static"]
    for in_batch in sorted({r["in_batch"] for r in full if r["objective"] == "static"}):
        chosen += [{**r, "label": r["label"] + " (best of sweep)"} for r in best_static(full, in_batch)]
    return sorted(chosen, key=lambda r: (r["label"], r.get("seed", 0)))
