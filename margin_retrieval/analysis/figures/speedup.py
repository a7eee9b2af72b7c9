"""Bars of the cost to reach the validation target, in training steps (top) and CPU seconds (bottom): each
self-distilled variant (error bar: 95% interval over seeds), the static sweep (stacked by τ: every τ trained in
full) and Margin-MSE (cost to target; in CPU seconds plus the teacher's scoring, hatched), with the speed-ups
printed; a CPU-seconds bar whose runs trained on several CPU kinds is left empty and says so. The numbers come from
``numbers.speedup`` and are also written as JSON and TSV."""

from __future__ import annotations

import textwrap
from typing import Mapping

import matplotlib.pyplot as plt

from margin_retrieval.analysis.figures.style import PathLike, color, new_figure, placeholder, save_figure, styled
from margin_retrieval.analysis.numbers.speedup import finite, speedup_numbers, speedup_rows
from margin_retrieval.analysis.numbers.train_logs import load_runs, read_benchmark
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import read_manifest, variant_label
from margin_retrieval.jobs.io import write_json, write_tsv

PANELS = (("steps", "training steps to the target"), ("cpu_seconds", "CPU seconds to the target"))


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} steps" if unit == "steps" else f"{value:.1f} s"


def _name(system: Mapping) -> str:
    """A system's name (its objective and in-batch setting), wrapped for a tick label; its data context (", BM25
    negatives, random batches": the rest of its label) goes to the title."""
    return "\n".join(textwrap.wrap(variant_label(system["objective"], system["in_batch"]), 16))


def _context(numbers: Mapping) -> str:
    """The data context shared by every bar's label, or '' when the labels differ in it."""
    entries = numbers.get("variants", [])
    systems = entries + [e["reference"] for e in entries if e["reference"] is not None]
    contexts = {s["label"].removeprefix(variant_label(s["objective"], s["in_batch"])).removeprefix(", ")
                for s in systems}
    return next(iter(contexts)) if len(contexts) == 1 else ""


def _mixed_cpus(system: Mapping, unit: str) -> bool:
    """Whether a bar's CPU seconds were left out because its runs trained on several CPU kinds."""
    return unit == "cpu_seconds" and len(system.get("cpu_kinds") or []) > 1


def _ratio(ax, x: float, height: float | None, ratio: float | None) -> None:
    ax.text(x, height or 0, "n/a" if ratio is None else f"×{ratio:.1f}", ha="center", va="bottom", fontsize=8,
            fontweight="bold")


def _own_bar(ax, x: float, entry: Mapping, unit: str) -> str:
    own = entry["to_target"].get(unit) if entry["to_target"]["n_reached"] == entry["to_target"]["n_seeds"] else None
    height = None if own is None else own["mean"]
    error = None if own is None or own["n"] < 2 else [[own["half_width"]], [own["half_width"]]]
    ax.bar(x, height or 0, 0.8, yerr=error, capsize=3, color=color(entry["objective"], entry["in_batch"]),
           edgecolor="black", linewidth=0.5)
    if _mixed_cpus(entry, unit):
        ax.text(x, 0, "seeds on\nseveral CPUs", ha="center", va="bottom", fontsize=7)
    elif height is None and unit == "steps":
        reached = entry["to_target"]
        ax.text(x, 0, f"reached by\n{reached['n_reached']} of {reached['n_seeds']}\nseeds", ha="center", va="bottom",
                fontsize=7)
    elif height is None:
        ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7)
    return _name(entry) + f"\n{_fmt(height, unit)}"


def _sweep_bar(ax, x: float, sweep: Mapping, in_batch: str, unit: str) -> str:
    bottom = 0.0
    for i, part in enumerate(sweep["per_tau"].values()):
        ax.bar(x, part[unit] or 0, 0.8, bottom=bottom, color=color("static", in_batch), alpha=0.55 + 0.45 * (i % 2),
               edgecolor="black", linewidth=0.5)
        bottom += part[unit] or 0
    _ratio(ax, x, sweep["cost"][unit], sweep["speedup"][unit])
    n = len(sweep["taus"])
    mixed = "\n(several CPUs)" if _mixed_cpus(sweep, unit) else ""
    return f"static sweep\n({n} τ value{'s' * (n != 1)})\n{_fmt(sweep['cost'][unit], unit)}{mixed}"


def _reference_bar(ax, x: float, ref: Mapping, unit: str) -> str:
    teacher = (ref["teacher_cpu_seconds"] or 0.0) if unit == "cpu_seconds" else 0.0
    cost = ref["cost"][unit]
    ax.bar(x, teacher, 0.8, color="white", edgecolor="black", hatch="///", linewidth=0.5)
    ax.bar(x, (cost - teacher) if cost is not None else 0, 0.8, bottom=teacher, color=color("margin_mse"),
           edgecolor="black", linewidth=0.5)
    if _mixed_cpus(ref, unit):
        _ratio(ax, x, teacher, None)
    elif cost is None:
        reached = ref["to_target"]
        ax.text(x, teacher, f"reached by\n{reached['n_reached']} of {reached['n_seeds']}\nseeds", ha="center",
                va="bottom", fontsize=7)
    else:
        _ratio(ax, x, cost, ref["speedup"][unit])
    mixed = "\n(several CPUs)" if _mixed_cpus(ref, unit) else ""
    return _name(ref) + ("\n(+ teacher)" if unit == "cpu_seconds" else "") + f"\n{_fmt(cost, unit)}{mixed}"


def _panel(ax, numbers: Mapping, unit: str, title: str) -> None:
    position, ticks, labels = 0.0, [], []
    for entry in numbers.get("variants", []):
        parts = [_own_bar(ax, position, entry, unit)]
        if entry["static_sweep"] is not None:
            parts.append(_sweep_bar(ax, position + len(parts), entry["static_sweep"], entry["in_batch"], unit))
        if entry["reference"] is not None:
            parts.append(_reference_bar(ax, position + len(parts), entry["reference"], unit))
        ticks += [position + i for i in range(len(parts))]
        labels += parts
        position += len(parts) + 0.6
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel(title)
    ax.set_axisbelow(True)
    ax.margins(y=0.15)
    ax.set_ylim(bottom=0)


@styled
def draw(numbers: Mapping, png: PathLike, pdf: PathLike) -> None:
    variants = numbers.get("variants", [])
    bars = sum(1 + (e["static_sweep"] is not None) + (e["reference"] is not None) for e in variants)
    fig, axes = new_figure(nrows=2, width=max(6.0, 0.95 * bars + 1.0), height=7.6)
    for ax, (unit, title) in zip(axes, PANELS):
        _panel(ax, numbers, unit, title)
    if not variants:
        placeholder(axes[0], "no adaptive or distributed runs at full data in this configuration"
                    if numbers.get("target") is not None else "no validation logs to compare")
    elif all(e["static_sweep"] is None and e["reference"] is None for e in variants):
        axes[0].text(0.5, 0.95, "no static-margin sweep and no reference run to compare with",
                     transform=axes[0].transAxes, ha="center", va="top", fontsize=9, color="#555555")
    notes = sorted({e["note"] for e in variants if e.get("note")})
    if notes:
        axes[0].text(0.5, 0.8, "\n".join(notes), transform=axes[0].transAxes, ha="center", va="top", fontsize=9,
                     color="#555555")
    if any(e["reference"] is not None for e in variants):
        handle = plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="///")
        axes[1].legend([handle], ["teacher scoring of the training triples"], loc="upper left")
    target, context = numbers.get("target"), _context(numbers)
    held = f", held for {numbers['hold']} validations" if numbers.get("hold", 1) > 1 else ""
    fig.suptitle(f"Cost to reach validation {TEST_MEASURE}" + (f" ≥ {target:.3f}{held}" if target is not None else "")
                 + f" (full training data{', ' + context if context else ''})\n×: cost relative to the self-distilled "
                 "run; a static sweep costs the full training of every τ\nCPU seconds = job CPU time per step × "
                 "steps, compared only between runs on one CPU kind",
                 fontsize=9)
    save_figure(fig, png, pdf)


def write_numbers(numbers: Mapping, json_path: PathLike | None = None, tsv_path: PathLike | None = None) -> None:
    """The speed-up numbers as JSON (everything) and TSV (one row per variant x comparison x unit)."""
    if json_path is not None:
        write_json(json_path, finite(numbers))
    if tsv_path is not None:
        fmt = lambda v: "" if v is None else v if isinstance(v, str) else f"{v:.6g}"  # noqa: E731
        write_tsv(tsv_path, ["method", "compared_with", "target", "unit", "method_cost", "compared_cost", "speedup"],
                  [[fmt(v) for v in row] for row in speedup_rows(numbers)])


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> dict:
    analysis = params.get("analysis") or {}
    teacher = inputs.get("teacher_benchmark") or None  # a path, a one-element list, or empty (no Margin-MSE)
    benchmark = read_benchmark(teacher if teacher is None or isinstance(teacher, str) else next(iter(teacher)))
    numbers = speedup_numbers(load_runs(read_manifest(inputs["manifest"])),
                              None if benchmark is None else benchmark["cpu_seconds"],
                              target=analysis.get("target_effectiveness"),
                              reference_objective=analysis.get("reference_objective", "margin_mse"),
                              hold=analysis.get("target_hold", 2))
    draw(numbers, outputs["png"], outputs["pdf"])
    write_numbers(numbers, outputs.get("json"), outputs.get("tsv"))
    return numbers
