"""Mean of the self-distilled target margins per logged training step with a min-max band, one panel per adaptive
/ distributed variant at full data (its first seed: the targets of the seeds differ only by noise)."""

from __future__ import annotations

from typing import Mapping, Sequence

from margin_retrieval.analysis.figures.style import PathLike, color, new_figure, placeholder, save_figure, styled
from margin_retrieval.analysis.numbers.speedup import SELF_DISTILLED
from margin_retrieval.analysis.numbers.train_logs import by_variant, full_runs, load_runs
from margin_retrieval.analysis.systems import read_manifest


@styled
def draw(runs: Sequence[dict], png: PathLike, pdf: PathLike) -> None:
    logged = [r for r in full_runs(runs) if r["objective"] in SELF_DISTILLED and r["train"]["target_mean"].notna().any()]
    chosen = sorted((seeds[0] for seeds in by_variant(logged).values()), key=lambda r: r["label"])
    fig, axes = new_figure(ncols=max(1, len(chosen)), width=max(5.0, 3.6 * len(chosen)), height=3.6, sharey=True)
    for ax, run in zip(axes, chosen):
        train = run["train"].dropna(subset=["target_mean"]).sort_values("step")
        shade = color(run["objective"], run["in_batch"])
        ax.fill_between(train["step"], train["target_min"], train["target_max"], color=shade, alpha=0.25,
                        linewidth=0, label="min–max over the batch")
        ax.plot(train["step"], train["target_mean"], color=shade, label="batch mean")
        ax.set_title(run["label"])
        ax.set_xlabel("training step (batches)")
        ax.legend(loc="best")
    if not chosen:
        placeholder(axes[0], "no adaptive or distributed runs with logged targets at full data")
        axes[0].set_xlabel("training step (batches)")
    axes[0].set_ylabel("self-distilled target margin r(p, n)\n(cosine similarity of positive and negative)")
    fig.suptitle("Self-distilled targets during training (full training data)")
    save_figure(fig, png, pdf)


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> None:
    draw(load_runs(read_manifest(inputs["manifest"])), outputs["png"], outputs["pdf"])
