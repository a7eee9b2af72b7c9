"""Per-query nDCG@10 of the full-data adaptive run vs the reference (scatter with the diagonal), and the per-query
differences sorted; with several seeds, each system's per-query scores are averaged over its seeds."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from margin_retrieval.analysis import stats
from margin_retrieval.analysis.figures.style import PathLike, color, new_figure, placeholder, save_figure, styled
from margin_retrieval.analysis.numbers.effectiveness import collection_of, default_setting, full_data
from margin_retrieval.analysis.numbers.seeds import average_per_query
from margin_retrieval.analysis.results import TEST_MEASURE, read_per_query
from margin_retrieval.analysis.systems import read_manifest, reference_variant, system_label, variant_label


def _first_model(records: pd.DataFrame) -> pd.DataFrame:
    trained = records[records["kind"] == "trained"]
    if trained.empty:
        return records
    model = sorted(trained["model"].unique())[0]
    return records[(records["kind"] != "trained") | (records["model"] == model)]


def per_query_pair(manifest: pd.DataFrame, reference_objective: str, objective: str = "adaptive",
                   collection: str | None = None) -> dict:
    """Choose and read the pair: the full-data ``objective`` variant (no in-batch; default negatives and batching)
    vs the reference variant, on ``collection`` (default: the first), per-query scores averaged over seeds."""
    collection = collection_of(manifest, collection) if len(manifest) else collection
    records = _first_model(manifest[manifest["collection"] == collection])
    variants = records.drop_duplicates("variant")
    pair = {"collection": collection or "", "scores": None, "reference_scores": None,
            "label": variant_label(objective), "reference_label": reference_objective}
    candidates = default_setting(full_data(variants[(variants["kind"] == "trained")
                                                    & (variants["objective"] == objective)
                                                    & (variants["in_batch"] == "false")]))
    reference = reference_variant(variants, reference_objective) if len(variants) else None
    for key, name in (("", None if candidates.empty else candidates.sort_values("variant").iloc[0]["variant"]),
                      ("reference_", reference)):
        if name is None:
            continue
        seeds = records[records["variant"] == name]
        scores = average_per_query({row["system"]: read_per_query(row["per_query"])
                                    for row in seeds.to_dict("records")})
        pair.update({f"{key}label": system_label(seeds.iloc[0].to_dict()), f"{key}scores": scores[name]})
    return pair


def _scatter(ax, x: np.ndarray, y: np.ndarray, label: str, reference_label: str, measure: str) -> None:
    diff = y - x
    better, worse = int((diff > 0).sum()), int((diff < 0).sum())
    ax.scatter(x, y, s=12, alpha=0.6, color=color("adaptive"), edgecolors="none")
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


def _differences(ax, diff: np.ndarray, label: str, reference_label: str, measure: str) -> None:
    ordered = np.sort(diff)[::-1]
    ax.bar(np.arange(len(ordered)), ordered, width=1.0, color=np.where(ordered >= 0, "#2ca02c", "#d62728"))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(float(diff.mean()), color="black", linestyle="--", linewidth=1,
               label=f"mean difference {diff.mean():+.3f}")
    ax.set_xlabel(f"query (sorted by difference; {len(diff)} queries)")
    ax.set_ylabel(f"Δ {measure} ({label} − {reference_label})")
    ax.legend(loc="upper right")


@styled
def draw(scores: Mapping[str, float] | None, reference_scores: Mapping[str, float] | None, label: str,
         reference_label: str, png: PathLike, pdf: PathLike, measure: str = TEST_MEASURE,
         collection: str = "") -> None:
    """Query sets must match (ValueError otherwise); a missing system gives a placeholder figure."""
    aligned = None if scores is None or reference_scores is None else stats.align(scores, reference_scores)
    fig, axes = new_figure(ncols=2, width=9.0, height=4.0)
    if aligned is None:
        missing = "no " + " and no ".join(
            name for name, s in ((label, scores), (reference_label, reference_scores)) if s is None)
        for ax in axes:
            placeholder(ax, f"{missing} run in this configuration")
    else:
        _, y, x = aligned
        _scatter(axes[0], x, y, label, reference_label, measure)
        _differences(axes[1], y - x, label, reference_label, measure)
    axes[0].set_title("per query")
    axes[1].set_title("differences, sorted")
    fig.suptitle(f"Per-query {measure}: {label} vs {reference_label}" + (f" on {collection}" if collection else ""))
    save_figure(fig, png, pdf)


def build(inputs: Mapping, params: Mapping, outputs: Mapping) -> None:
    analysis = params.get("analysis") or {}
    pair = per_query_pair(read_manifest(inputs["manifest"]), analysis.get("reference_objective", "margin_mse"),
                          collection=params.get("collection"))
    draw(pair["scores"], pair["reference_scores"], pair["label"], pair["reference_label"], outputs["png"],
         outputs["pdf"], collection=pair["collection"])
