"""The figures: one function per figure, each writing a PNG and a PDF.

Inputs are pandas tables and plain dicts (``results.tsv`` via ``tables.read_results``, training logs via
``load_runs``), so every function is testable without Snakemake. Every figure copes with a configuration that lacks
some of its pieces (no static runs, no teacher, ...): it says so on the figure instead of failing. Output is
deterministic: a fixed style, the Agg backend, and no timestamps in the files.

``build_figure`` is the single entry point the Snakemake script calls; it loads the inputs of one figure by name.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from margin_retrieval.analysis import stats  # noqa: E402
from margin_retrieval.io import atomic_path, write_json, write_tsv  # noqa: E402
from margin_retrieval.analysis.tables import (  # noqa: E402
    TEST_MEASURE, read_per_query, read_results, reference_system, system_label, variant_label,
)

log = logging.getLogger(__name__)
PathLike = str | os.PathLike

SELF_DISTILLED = ("adaptive", "distributed")
SCORE_UNIT = "cosine-similarity difference"
STYLE = {
    "figure.dpi": 100, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "legend.fontsize": 7.5, "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.6, "lines.markersize": 5,
    "axes.spines.top": False, "axes.spines.right": False, "figure.constrained_layout.use": True,
    "pdf.fonttype": 42, "svg.hashsalt": "margin-retrieval", "path.simplify": False,
}
COLORS = {
    ("static", "false"): "#1f77b4", ("static", "true"): "#17becf", ("static", "textbook"): "#9467bd",
    ("adaptive", "false"): "#ff7f0e", ("adaptive", "true"): "#d62728", ("adaptive", "textbook"): "#8c564b",
    ("distributed", "false"): "#2ca02c", ("margin_mse", "false"): "#000000", ("infonce", "false"): "#7f7f7f",
}
ZEROSHOT_COLORS = ("#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8")


# -- style and output ---------------------------------------------------------------------------------------------
def _styled(function):
    """Run a figure function under the fixed style (artists read rcParams when they are created)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.style.context("default"), matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def _figure(ncols: int = 1, width: float = 5.5, height: float = 3.6, **kwargs):
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False, **kwargs)
    return fig, list(axes[0])


def save_figure(fig, png: PathLike, pdf: PathLike) -> None:
    """Write both formats atomically and without timestamps, then close the figure."""
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": None})
        with atomic_path(pdf) as tmp:
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    finally:
        plt.close(fig)


def _placeholder(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#555555",
            wrap=True, bbox={"boxstyle": "round", "facecolor": "#f4f4f4", "edgecolor": "#bbbbbb"})


def _color(objective: str, in_batch: str = "false") -> str:
    return COLORS.get((objective, in_batch or "false"), "#7f7f7f")


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


# -- selecting rows of results.tsv ----------------------------------------------------------------------------------
def _collection(results: pd.DataFrame, collection: str | None) -> str | None:
    collections = sorted(results["collection"].unique()) if len(results) else []
    if collection is None:
        return collections[0] if collections else None
    if collection not in collections:
        raise ValueError(f"collection {collection!r} not in the results ({collections})")
    return collection


def _rows(results: pd.DataFrame, collection: str | None, measure: str, model: str | None = None) -> pd.DataFrame:
    """One row per system of one collection and measure; trained rows of one student model only."""
    collection = _collection(results, collection)
    rows = results[(results["collection"] == collection) & (results["measure"] == measure)]
    trained = rows[rows["kind"] == "trained"]
    if model is None and len(trained):
        model = sorted(trained["model"].unique())[0]
    keep = (rows["kind"] != "trained") | (rows["model"] == model)
    return rows[keep].drop_duplicates("system").reset_index(drop=True)


def _full(trained: pd.DataFrame) -> pd.DataFrame:
    """The runs at the largest training fraction (normally 100%)."""
    if trained.empty:
        return trained
    return trained[np.isclose(trained["fraction"], trained["fraction"].max())]


def _value(rows: pd.DataFrame, objective: str, in_batch: str = "false") -> float | None:
    match = _full(rows[rows["kind"] == "trained"])
    match = match[(match["objective"] == objective) & (match["in_batch"] == in_batch)]
    return None if match.empty else float(match["value"].iloc[0])


def _reference_lines(ax, references: list[tuple[str, float, str, str]]) -> None:
    for label, value, color, style in references:
        ax.axhline(value, color=color, linestyle=style, linewidth=1.2, label=f"{label} ({value:.3f})")


# -- figure 1: effectiveness vs static margin -----------------------------------------------------------------------
@_styled
def figure_tau(results: pd.DataFrame, png: PathLike, pdf: PathLike, collection: str | None = None,
               measure: str = TEST_MEASURE, model: str | None = None) -> None:
    """Test effectiveness vs the static margin tau (one line per in-batch setting), with the self-distilled
    objectives and Margin-MSE at full data as horizontal reference lines."""
    rows = _rows(results, collection, measure, model)
    collection = _collection(results, collection)
    fig, (ax,) = _figure()
    full = _full(rows[rows["kind"] == "trained"])
    static = full[full["objective"] == "static"].dropna(subset=["tau"])
    taus = sorted(static["tau"].unique())
    for in_batch, group in static.groupby("in_batch", sort=True):
        group = group.sort_values("tau")
        ax.plot(group["tau"], group["value"], marker="o", color=_color("static", in_batch),
                label=variant_label("static", in_batch))
    references = []
    styles = {"adaptive": "--", "distributed": "-.", "margin_mse": ":"}
    for objective, in_batch in [("adaptive", "false"), ("adaptive", "true"), ("adaptive", "textbook"),
                                ("distributed", "false"), ("margin_mse", "false")]:
        value = _value(rows, objective, in_batch)
        if value is not None:
            references.append((variant_label(objective, in_batch), value, _color(objective, in_batch),
                               styles[objective]))
    _reference_lines(ax, references)
    if not taus:
        _placeholder(ax, "no static-margin runs in this configuration")
        ax.set_xlim(0, 1)
    elif len(taus) > 1 and min(taus) > 0:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(taus))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{t:g}" for t in taus])
    ax.set_xlabel(f"static margin τ ({SCORE_UNIT})")
    ax.set_ylabel(f"test {measure} (higher is better)")
    ax.set_title(f"Effectiveness vs static margin on {collection}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    save_figure(fig, png, pdf)


# -- figure 2: data efficiency --------------------------------------------------------------------------------------
def smallest_matching_fraction(results: pd.DataFrame, margin: float, reference_objective: str = "margin_mse",
                               collection: str | None = None, measure: str = TEST_MEASURE,
                               model: str | None = None) -> dict[str, float | None]:
    """Per adaptive variant (label -> fraction): the smallest training fraction whose test ``measure`` reaches
    the full-data reference within ``margin`` (value >= reference - margin); None when no fraction does or when
    the configuration has no reference run. Empty when there is no adaptive run."""
    rows = _rows(results, collection, measure, model)
    reference = _reference(rows, reference_objective)
    trained = rows[(rows["kind"] == "trained") & (rows["objective"] == "adaptive")]
    out: dict[str, float | None] = {}
    for in_batch, group in sorted(trained.groupby("in_batch"), key=lambda item: item[0]):
        label = variant_label("adaptive", in_batch)
        if reference is None:
            out[label] = None
            continue
        matching = group[group["value"] >= reference[1] - margin]
        out[label] = float(matching["fraction"].min()) if len(matching) else None
    return out


def _reference(rows: pd.DataFrame, reference_objective: str) -> tuple[pd.Series, float] | None:
    """The reference system's row and value (the full-data run of ``reference_objective``, or a system name)."""
    name = reference_system(rows, reference_objective) if len(rows) else None
    if name is None:
        return None
    row = rows[rows["system"] == name].iloc[0]
    return row, float(row["value"])


@_styled
def figure_data_efficiency(results: pd.DataFrame, png: PathLike, pdf: PathLike, margin: float,
                           reference_objective: str = "margin_mse", collection: str | None = None,
                           measure: str = TEST_MEASURE, student: str | None = None, teacher: str | None = None,
                           model: str | None = None) -> dict[str, float | None]:
    """Test effectiveness vs training fraction (one line per objective trained on reduced data), the full-data
    reference (with the equivalence band) and the zero-shot models as horizontal lines. Returns
    ``smallest_matching_fraction`` and prints it on the figure."""
    rows = _rows(results, collection, measure, model)
    collection = _collection(results, collection)
    fig, (ax,) = _figure(width=7.5, height=4.2)
    trained = rows[rows["kind"] == "trained"]
    fractions: set[float] = set()
    lines = 0
    for (objective, in_batch, tau), group in trained.fillna({"tau": -1}).groupby(["objective", "in_batch", "tau"]):
        if not (group["fraction"] < 1).any():
            continue  # not part of a data-efficiency experiment
        group = group.sort_values("fraction")
        label = variant_label(objective, in_batch) + (f" τ={tau:g}" if objective == "static" else "")
        ax.plot(group["fraction"], group["value"], marker="o", color=_color(objective, in_batch), label=label)
        fractions.update(group["fraction"])
        lines += 1
    reference = _reference(rows, reference_objective)
    if reference is not None:
        ref_row, ref_value = reference
        ref_label = system_label(ref_row.to_dict())
        if ref_row["kind"] == "trained":
            ref_label += f" ({_percent(ref_row['fraction'])} data)"
        ax.axhline(ref_value, color="black", linestyle="--", linewidth=1.2, label=f"{ref_label} ({ref_value:.3f})")
        ax.axhspan(ref_value - margin, ref_value, color="black", alpha=0.08, linewidth=0,
                   label=f"equivalence margin (−{margin:g})")
    zeroshot = rows[rows["kind"] == "zeroshot"].sort_values("model")
    for color, row in zip(ZEROSHOT_COLORS, zeroshot.to_dict("records")):
        role = " (student)" if row["model"] == student else " (teacher)" if row["model"] == teacher else ""
        ax.axhline(row["value"], color=color, linestyle=":", linewidth=1.2,
                   label=f"{row['model']}{role}, zero-shot ({row['value']:.3f})")
    smallest = smallest_matching_fraction(results, margin, reference_objective, collection, measure, model)
    if lines == 0:
        _placeholder(ax, "no runs on reduced training data in this configuration")
        ax.set_xlim(0, 1)
    else:
        ticks = sorted(fractions)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([_percent(f) for f in ticks])
    if reference is None:
        summary = f"no {reference_objective} reference run: matching fraction undefined"
    elif not smallest:
        summary = "no adaptive runs in this configuration"
    else:
        summary = f"smallest fraction within −{margin:g}\nof the reference:\n" + "\n".join(
            f"  {label}: " + (_percent(value) if value is not None else "not reached")
            for label, value in smallest.items())
    ax.text(1.03, 0.0, summary, transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#999999"})
    ax.set_xlabel("training data (% of training queries, log scale)")
    ax.set_ylabel(f"test {measure} (higher is better)")
    ax.set_title(f"Data efficiency on {collection}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save_figure(fig, png, pdf)
    return smallest


# -- training logs --------------------------------------------------------------------------------------------------
def read_train_log(path: PathLike) -> dict:
    """A ``train_log.jsonl`` as ``{"train": DataFrame, "validation": DataFrame, "end": dict | None}``."""
    events: dict[str, list[dict]] = {"train": [], "validation": [], "end": []}
    with open(path) as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if record.get("event") in events:
                    events[record["event"]].append(record)
    train = pd.DataFrame(events["train"], columns=["step", "triples_seen", "seconds", "loss", "lr", "target_mean",
                                                   "target_min", "target_max"])
    validation = pd.DataFrame(events["validation"], columns=["step", "triples_seen", "seconds", TEST_MEASURE])
    for frame in (train, validation):
        for column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return {"train": train, "validation": validation, "end": events["end"][-1] if events["end"] else None}


def load_runs(log_paths: Sequence[PathLike], runs: Sequence[Mapping]) -> list[dict]:
    """Training runs with their logs: ``runs[i]`` (objective, in_batch, tau, fraction, model[, run]) describes
    ``log_paths[i]``. Each result is the run dict plus ``label``, ``train``, ``validation`` and ``end``."""
    if len(log_paths) != len(runs):
        raise ValueError(f"{len(log_paths)} training logs but {len(runs)} run descriptions")
    loaded = []
    for path, run in zip(log_paths, runs):
        run = {**run, "in_batch": str(run.get("in_batch", "false")).lower(), "fraction": float(run["fraction"])}
        loaded.append({**run, **read_train_log(path), "label": system_label({**run, "kind": "trained"})})
    return loaded


def _best(run: Mapping) -> float | None:
    values = run["validation"][TEST_MEASURE].dropna()
    if len(values):
        return float(values.max())
    end = run.get("end") or {}
    return float(end["best_value"]) if end.get("best_value") is not None else None


def _full_runs(runs: Sequence[dict], model: str | None = None) -> list[dict]:
    if model is None and runs:
        model = sorted({str(r.get("model")) for r in runs})[0]
    runs = [r for r in runs if str(r.get("model")) == model]
    if not runs:
        return []
    top = max(r["fraction"] for r in runs)
    return [r for r in runs if math.isclose(r["fraction"], top)]


def _curve_runs(runs: Sequence[dict]) -> list[dict]:
    """Full-data runs for the curves: every non-static run plus the best static tau per in-batch setting."""
    full = _full_runs(runs)
    chosen = [r for r in full if r["objective"] != "static"]
    for in_batch in sorted({r["in_batch"] for r in full if r["objective"] == "static"}):
        sweep = [r for r in full if r["objective"] == "static" and r["in_batch"] == in_batch]
        best = max(sweep, key=lambda r: (_best(r) if _best(r) is not None else -math.inf, -float(r["tau"] or 0)))
        chosen.append({**best, "label": best["label"] + " (best of sweep)"})
    return sorted(chosen, key=lambda r: r["label"])


# -- figure 3: training curves --------------------------------------------------------------------------------------
@_styled
def figure_training_curves(runs: Sequence[dict], png: PathLike, pdf: PathLike) -> None:
    """Validation nDCG@10 vs training triples seen (left) and vs wall-clock training seconds (right), one line
    per objective at full data (static: the best tau of each sweep)."""
    fig, axes = _figure(ncols=2, width=9.0, height=3.8, sharey=True)
    chosen = [r for r in _curve_runs(runs) if len(r["validation"])]
    for run in chosen:
        curve = run["validation"].sort_values("step")
        style = {"color": _color(run["objective"], run["in_batch"]), "marker": ".", "label": run["label"]}
        axes[0].plot(curve["triples_seen"], curve[TEST_MEASURE], **style)
        axes[1].plot(curve["seconds"], curve[TEST_MEASURE], **style)
    if not chosen:
        for ax in axes:
            _placeholder(ax, "no validation logs in this configuration")
    axes[0].set_xlabel("training triples seen")
    axes[1].set_xlabel("wall-clock training time (s, without teacher scoring)")
    axes[0].set_ylabel(f"validation {TEST_MEASURE} (higher is better)")
    axes[0].set_title("per training triple")
    axes[1].set_title("per second of training")
    fig.suptitle("Validation effectiveness during training (full training data)")
    if chosen:
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    save_figure(fig, png, pdf)


# -- figure 4: speed-up ---------------------------------------------------------------------------------------------
def _time_to_target(run: Mapping, target: float) -> float | None:
    curve = run["validation"].sort_values("step")
    reached = curve[curve[TEST_MEASURE] >= target]
    return None if reached.empty else float(reached["seconds"].iloc[0])


def _total_seconds(run: Mapping) -> float:
    end = run.get("end") or {}
    if end.get("seconds") is not None:
        return float(end["seconds"])
    logged = pd.concat([run["train"]["seconds"], run["validation"]["seconds"]]).dropna()
    return float(logged.max()) if len(logged) else 0.0


def _ratio(cost: float | None, time: float | None) -> float | None:
    return cost / time if cost is not None and time is not None and time > 0 else None


def speedup_numbers(runs: Sequence[dict], teacher_seconds: float | None = None, target: float | None = None,
                    reference_objective: str = "margin_mse") -> dict:
    """Wall-clock cost of reaching a validation target, self-distillation vs its alternatives (full data).

    Per self-distilled run (adaptive, adaptive in-batch, distributed): its time to the target (first validation
    at or above it); the static-margin sweep of the same in-batch setting, whose cost is the full training time of
    every tau run (a sweep must train them all); and the reference (Margin-MSE): time to target plus the teacher
    scoring time. ``target`` None means the lowest of the best validation values of the compared methods, so each
    reaches it. Speed-ups are cost / self-distilled time; None where undefined (target never reached, or reached
    before any training at step 0).
    """
    full = _full_runs(runs)
    variants = [r for r in full if r["objective"] in SELF_DISTILLED]
    sweeps: dict[str, list[dict]] = {}
    for run in full:
        if run["objective"] == "static":
            sweeps.setdefault(run["in_batch"], []).append(run)
    references = [r for r in full if r["objective"] == reference_objective and r["in_batch"] == "false"]
    reference = references[0] if references else None
    compared = [_best(r) for r in variants]
    compared += [max((_best(r) for r in sweep if _best(r) is not None), default=None) for sweep in sweeps.values()]
    compared += [_best(reference)] if reference is not None else []
    compared = [v for v in compared if v is not None]
    source = "config"
    if target is None:
        target, source = (min(compared) if compared else None), "lowest best validation value of the compared runs"
    numbers = {"target": target, "target_source": source, "measure": f"validation {TEST_MEASURE}",
               "teacher_seconds": teacher_seconds, "variants": []}
    if target is None:
        return numbers
    for run in sorted(variants, key=lambda r: r["label"]):
        seconds = _time_to_target(run, target)
        entry = {"label": run["label"], "objective": run["objective"], "in_batch": run["in_batch"],
                 "best_value": _best(run), "seconds_to_target": seconds, "total_seconds": _total_seconds(run),
                 "static_sweep": None, "reference": None}
        if seconds == 0:
            entry["note"] = "target reached by the untrained model (step 0); speed-ups undefined"
        sweep = sweeps.get(run["in_batch"], [])
        if sweep:
            best = max(sweep, key=lambda r: _best(r) if _best(r) is not None else -math.inf)
            cost = sum(_total_seconds(r) for r in sweep)
            entry["static_sweep"] = {
                "label": variant_label("static", run["in_batch"]) + " sweep",
                "taus": sorted(float(r["tau"]) for r in sweep),
                "seconds_per_tau": {f"{float(r['tau']):g}": _total_seconds(r) for r in
                                    sorted(sweep, key=lambda r: float(r["tau"]))},
                "seconds": cost, "best_tau": float(best["tau"]), "best_value": _best(best),
                "reached": any(_time_to_target(r, target) is not None for r in sweep),
                "speedup": _ratio(cost, seconds),
            }
        if reference is not None:
            ref_seconds = _time_to_target(reference, target)
            teacher = teacher_seconds or 0.0
            cost = None if ref_seconds is None else ref_seconds + teacher
            entry["reference"] = {
                "label": reference["label"], "seconds_to_target": ref_seconds, "teacher_seconds": teacher_seconds,
                "seconds": cost, "best_value": _best(reference), "speedup": _ratio(cost, seconds),
            }
        numbers["variants"].append(entry)
    return numbers


def write_speedup(numbers: Mapping, json_path: PathLike | None = None, tsv_path: PathLike | None = None) -> None:
    """The speed-up numbers as JSON (everything) and TSV (one row per self-distilled run x comparison)."""
    if json_path is not None:
        write_json(json_path, numbers)
    if tsv_path is not None:
        rows = []
        for entry in numbers["variants"]:
            for key in ("static_sweep", "reference"):
                other = entry[key]
                if other is not None:
                    rows.append([entry["label"], other["label"], numbers["target"], entry["seconds_to_target"],
                                 other["seconds"], other["speedup"]])
        fmt = lambda v: "" if v is None else v if isinstance(v, str) else f"{v:.6g}"  # noqa: E731
        write_tsv(tsv_path, ["method", "compared_with", "target", "method_seconds", "compared_seconds", "speedup"],
                  [[fmt(v) for v in row] for row in rows])


@_styled
def figure_speedup(numbers: Mapping, png: PathLike, pdf: PathLike) -> None:
    """Bars of wall-clock seconds to the validation target: each self-distilled run, the static sweep (stacked
    by tau) and Margin-MSE (time to target + teacher scoring), with the speed-up ratios printed."""
    fig, (ax,) = _figure(width=7.0, height=4.0)
    variants = numbers.get("variants", [])
    position, ticks, labels = 0.0, [], []
    width = 0.8
    for entry in variants:
        color = _color(entry["objective"], entry["in_batch"])
        seconds = entry["seconds_to_target"]
        ax.bar(position, seconds or 0, width, color=color, edgecolor="black", linewidth=0.5)
        if seconds is None:
            ax.text(position, 0, "not\nreached", ha="center", va="bottom", fontsize=7)
        ticks.append(position)
        labels.append(entry["label"].replace(" (", "\n(") + f"\n{_seconds(seconds)}")
        position += 1
        sweep = entry["static_sweep"]
        if sweep is not None:
            bottom = 0.0
            for i, (tau, part) in enumerate(sweep["seconds_per_tau"].items()):
                ax.bar(position, part, width, bottom=bottom, color=_color("static", entry["in_batch"]),
                       alpha=0.55 + 0.45 * (i % 2), edgecolor="black", linewidth=0.5)
                bottom += part
            _ratio_label(ax, position, sweep["seconds"], sweep["speedup"])
            ticks.append(position)
            n_taus = len(sweep["taus"])
            labels.append(f"static sweep\n({n_taus} τ value{'s' * (n_taus != 1)})\n{_seconds(sweep['seconds'])}")
            position += 1
        ref = entry["reference"]
        if ref is not None:
            train = ref["seconds_to_target"] or 0.0
            teacher = ref["teacher_seconds"] or 0.0
            ax.bar(position, teacher, width, color="white", edgecolor="black", hatch="///", linewidth=0.5)
            ax.bar(position, train, width, bottom=teacher, color=_color("margin_mse"), edgecolor="black",
                   linewidth=0.5)
            if ref["seconds_to_target"] is None:
                ax.text(position, teacher, "not\nreached", ha="center", va="bottom", fontsize=7)
            else:
                _ratio_label(ax, position, ref["seconds"], ref["speedup"])
            ticks.append(position)
            labels.append(ref["label"] + f"\n(+ teacher)\n{_seconds(ref['seconds'])}")
            position += 1
        position += 0.6
    if not variants:
        _placeholder(ax, "no adaptive or distributed runs at full data in this configuration"
                     if numbers.get("target") is not None else "no validation logs to compare")
    elif all(e["static_sweep"] is None and e["reference"] is None for e in variants):
        ax.text(0.5, 0.95, "no static-margin sweep and no reference run to compare with", transform=ax.transAxes,
                ha="center", va="top", fontsize=9, color="#555555")
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("wall-clock training time (s)")
    target = numbers.get("target")
    ax.set_title("Time to reach validation " + TEST_MEASURE
                 + (f" ≥ {target:.3f}" if target is not None else "") + " (full training data)\n"
                 + "×: cost relative to the self-distilled run; a static sweep costs the full training of every τ",
                 fontsize=9)
    ax.set_axisbelow(True)
    ax.margins(y=0.15)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="///")]
    if any(e["reference"] is not None for e in variants):
        ax.legend(handles, ["teacher scoring of the training triples"], loc="upper left")
    save_figure(fig, png, pdf)


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def _ratio_label(ax, x: float, height: float | None, ratio: float | None) -> None:
    text = "n/a" if ratio is None else f"×{ratio:.1f}"
    ax.text(x, height or 0, text, ha="center", va="bottom", fontsize=8, fontweight="bold")


# -- figure 5: self-distilled targets -------------------------------------------------------------------------------
@_styled
def figure_targets(runs: Sequence[dict], png: PathLike, pdf: PathLike) -> None:
    """Mean of the self-distilled target margins per logged training step with a min-max band, one panel per
    adaptive / distributed run at full data."""
    chosen = [r for r in _full_runs(runs) if r["objective"] in SELF_DISTILLED
              and r["train"]["target_mean"].notna().any()]
    chosen.sort(key=lambda r: r["label"])
    fig, axes = _figure(ncols=max(1, len(chosen)), width=max(5.0, 3.6 * len(chosen)), height=3.6, sharey=True)
    for ax, run in zip(axes, chosen):
        train = run["train"].dropna(subset=["target_mean"]).sort_values("step")
        color = _color(run["objective"], run["in_batch"])
        ax.fill_between(train["step"], train["target_min"], train["target_max"], color=color, alpha=0.25,
                        linewidth=0, label="min–max over the batch")
        ax.plot(train["step"], train["target_mean"], color=color, label="batch mean")
        ax.set_title(run["label"])
        ax.set_xlabel("training step (batches)")
        ax.legend(loc="best")
    if not chosen:
        _placeholder(axes[0], "no adaptive or distributed runs with logged targets at full data")
        axes[0].set_xlabel("training step (batches)")
    axes[0].set_ylabel("self-distilled target margin r(p, n)\n(cosine similarity of positive and negative)")
    fig.suptitle("Self-distilled targets during training (full training data)")
    save_figure(fig, png, pdf)


# -- figure 6: per-query comparison ---------------------------------------------------------------------------------
@_styled
def figure_per_query(scores: Mapping[str, float] | None, reference_scores: Mapping[str, float] | None,
                     label: str, reference_label: str, png: PathLike, pdf: PathLike,
                     measure: str = TEST_MEASURE, collection: str = "") -> None:
    """Per-query ``measure`` of a system (y) vs the reference (x) with the diagonal, and the per-query differences
    sorted. Query sets must match (ValueError otherwise); a missing system gives a placeholder figure."""
    aligned = None if scores is None or reference_scores is None else stats.align(scores, reference_scores)
    fig, axes = _figure(ncols=2, width=9.0, height=4.0)
    title = f"Per-query {measure}: {label} vs {reference_label}" + (f" on {collection}" if collection else "")
    if aligned is None:
        missing = "no " + " and no ".join(
            name for name, s in ((label, scores), (reference_label, reference_scores)) if s is None)
        for ax in axes:
            _placeholder(ax, f"{missing} run in this configuration")
    else:
        _, y, x = aligned
        diff = y - x
        better, worse = int((diff > 0).sum()), int((diff < 0).sum())
        ax = axes[0]
        ax.scatter(x, y, s=12, alpha=0.6, color=_color("adaptive"), edgecolors="none")
        low, high = float(min(x.min(), y.min(), 0)), float(max(x.max(), y.max(), 1))
        ax.plot([low, high], [low, high], color="black", linewidth=1, linestyle="--", label="equal effectiveness")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{reference_label}: per-query {measure}")
        ax.set_ylabel(f"{label}: per-query {measure}")
        ax.text(0.03, 0.97, f"above diagonal: {better}\nbelow: {worse}\nequal: {len(diff) - better - worse}",
                transform=ax.transAxes, va="top", fontsize=8)
        ax.legend(loc="lower right")
        ax = axes[1]
        ordered = np.sort(diff)[::-1]
        ax.bar(np.arange(len(ordered)), ordered, width=1.0, color=np.where(ordered >= 0, "#2ca02c", "#d62728"))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axhline(float(diff.mean()), color="black", linestyle="--", linewidth=1,
                   label=f"mean difference {diff.mean():+.3f}")
        ax.set_xlabel(f"query (sorted by difference; {len(diff)} queries)")
        ax.set_ylabel(f"Δ {measure} ({label} − {reference_label})")
        ax.legend(loc="upper right")
    axes[0].set_title("per query")
    axes[1].set_title("differences, sorted")
    fig.suptitle(title)
    save_figure(fig, png, pdf)


# -- loading for the Snakemake entry point ----------------------------------------------------------------------------
def read_benchmark_seconds(path: PathLike | None) -> float | None:
    """Wall-clock seconds (column ``s``; the mean over repeats) of a Snakemake benchmark file, None if absent."""
    if path is None or not Path(path).exists():
        return None
    table = pd.read_csv(path, sep="\t")
    return float(table["s"].mean()) if len(table) else None


def _single(value) -> str | None:
    """A Snakemake input that may be a path, a one-element list, or empty (absent)."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return value or None
    value = list(value)
    return str(value[0]) if value else None


def _systems_frame(systems: Sequence[Mapping]) -> pd.DataFrame:
    frame = pd.DataFrame([{"kind": s.get("kind", s["system"].split("/", 1)[0]), "model": s.get("model", ""),
                           "objective": s.get("objective") or "", "in_batch": str(s.get("in_batch") or "").lower(),
                           "tau": math.nan if s.get("tau") is None else float(s["tau"]),
                           "fraction": math.nan if s.get("fraction") is None else float(s["fraction"]),
                           "system": s["system"], "collection": s["collection"], "measure": TEST_MEASURE,
                           "value": 0.0} for s in systems])
    return frame


def per_query_pair(per_query_paths: Sequence[PathLike], systems: Sequence[Mapping], reference_objective: str,
                   objective: str = "adaptive", collection: str | None = None) -> dict:
    """Choose and read the per-query scores of the figure-6 pair: the full-data ``objective`` run (no in-batch)
    vs the reference system, on ``collection`` (default: the first)."""
    if len(per_query_paths) != len(systems):
        raise ValueError(f"{len(per_query_paths)} per-query files but {len(systems)} system descriptions")
    frame = _systems_frame(systems)
    collection = _collection(frame, collection) if len(frame) else collection
    rows = _rows(frame, collection, TEST_MEASURE) if len(frame) else frame
    paths = {(s["collection"], s["system"]): p for p, s in zip(per_query_paths, systems)}
    reference = _reference(rows, reference_objective) if len(rows) else None
    candidates = _full(rows[(rows["kind"] == "trained") & (rows["objective"] == objective)]) if len(rows) else rows
    candidates = candidates[candidates["in_batch"] == "false"] if len(candidates) else candidates
    pair = {"collection": collection or "", "scores": None, "reference_scores": None,
            "label": variant_label(objective), "reference_label": reference_objective}
    if len(candidates):
        row = candidates.sort_values("system").iloc[0]
        pair.update(label=system_label(row.to_dict()), scores=read_per_query(paths[(collection, row["system"])]))
    if reference is not None:
        row = reference[0]
        pair.update(reference_label=system_label(row.to_dict()),
                    reference_scores=read_per_query(paths[(collection, row["system"])]))
    return pair


FIGURES = ("tau", "data_efficiency", "training_curves", "speedup", "targets", "per_query")


def build_figure(name: str, inputs: Mapping, params: Mapping, outputs: Mapping):
    """Load the inputs of figure ``name`` and draw it (the Snakemake script passes its input/params/output).

    inputs: ``results`` (tau, data_efficiency); ``logs`` (training_curves, speedup, targets);
    ``teacher_benchmark`` (speedup, optional); ``per_query`` (per_query). params: ``analysis`` (the config
    section; data_efficiency, speedup, per_query), ``runs`` (aligned with ``logs``), ``systems`` (aligned with
    ``per_query``), optional ``collection``, ``student``, ``teacher``. outputs: ``png``, ``pdf``; optional
    ``json`` (data_efficiency, speedup) and ``tsv`` (speedup).
    """
    log.info("figure %s -> %s", name, ", ".join(str(path) for path in outputs.values()))
    analysis = params.get("analysis") or {}
    reference_objective = analysis.get("reference_objective", "margin_mse")
    png, pdf = outputs["png"], outputs["pdf"]
    collection = params.get("collection")
    if name == "tau":
        return figure_tau(read_results(inputs["results"]), png, pdf, collection=collection)
    if name == "data_efficiency":
        results = read_results(inputs["results"])
        margin = analysis.get("equivalence_margin", 0.01)
        smallest = figure_data_efficiency(results, png, pdf, margin=margin, reference_objective=reference_objective,
                                          collection=collection, student=params.get("student"),
                                          teacher=params.get("teacher"))
        if outputs.get("json"):
            rows = _rows(results, collection, TEST_MEASURE)
            reference = _reference(rows, reference_objective) if len(rows) else None
            write_json(outputs["json"], {
                "collection": _collection(results, collection), "measure": TEST_MEASURE, "margin": margin,
                "reference_system": None if reference is None else reference[0]["system"],
                "reference_value": None if reference is None else reference[1],
                "smallest_matching_fraction": smallest,
            })
        return smallest
    if name in ("training_curves", "speedup", "targets"):
        runs = load_runs(list(inputs.get("logs") or []), list(params.get("runs") or []))
        if name == "training_curves":
            return figure_training_curves(runs, png, pdf)
        if name == "targets":
            return figure_targets(runs, png, pdf)
        numbers = speedup_numbers(runs, read_benchmark_seconds(_single(inputs.get("teacher_benchmark"))),
                                  target=analysis.get("target_effectiveness"),
                                  reference_objective=reference_objective)
        figure_speedup(numbers, png, pdf)
        write_speedup(numbers, outputs.get("json"), outputs.get("tsv"))
        return numbers
    if name == "per_query":
        pair = per_query_pair(list(inputs.get("per_query") or []), list(params.get("systems") or []),
                              reference_objective, collection=collection)
        return figure_per_query(pair["scores"], pair["reference_scores"], pair["label"], pair["reference_label"],
                                png, pdf, collection=pair["collection"])
    raise ValueError(f"unknown figure {name!r}; known: {FIGURES}")
