"""Validation nDCG@10 vs training triples seen (left) and vs training steps (right), one line per seed of each
objective at full data (static: the best τ of each sweep, chosen on validation). Steps, not wall-clock seconds:
they do not change with the load of the machine (the CPU cost is in the speed-up figure)."""

from __future__ import annotations

from typing import Mapping, Sequence

from margin_retrieval.analysis.figures.style import PathLike, color, new_figure, placeholder, save_figure, styled
from margin_retrieval.analysis.numbers.train_logs import curve_runs, load_runs
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import read_manifest


@styled
def draw(runs: Sequence[dict], png: PathLike, pdf: PathLike) -> None:
    fig, axes = new_figure(ncols=2, width=9.0, height=3.8, sharey=True)
    chosen = [r for r in curve_runs(runs) if len(r["validation"])]
    labelled = set()
    for run in chosen:
        curve = run["validation"].sort_values("step")
        # Seeds of one variant share colour and label: the spread of the lines is the seed noise.
        label = None if run["label"] in labelled else run["label"]
        labelled.add(run["label"])
        style = {"color": color(run["objective"], run["in_batch"]), "marker": ".", "label": label}
        axes[0].plot(curve["triples_seen"], curve[TEST_MEASURE], **style)
        axes[1].plot(curve["step"], curve[TEST_MEASURE], **style)
    if not chosen:
        for ax in axes:
            placeholder(ax, "no validation logs in this configuration")
    axes[0].set_xlabel("training triples seen")
    axes[1].set_xlabel("training steps (batches)")
    axes[0].set_ylabel(f"validation {TEST_MEASURE} (higher is better)")
    axes[0].set_title("per training triple")
    axes[1].set_title("per training step")
    fig.suptitle("Validation effectiveness during training (full training data; one line per seed)")
    if chosen:
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    save_figure(fig, png, pdf)


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> None:
    draw(load_runs(read_manifest(inputs["manifest"])), outputs["png"], outputs["pdf"])
