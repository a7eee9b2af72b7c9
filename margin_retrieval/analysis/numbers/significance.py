"""The numbers of the main table: per variant, each measure's mean over seeds with its 95% interval, and against
its model's reference a paired t-test (Holm-corrected over the variants of one collection) and a paired TOST
equivalence test, both on per-query scores averaged over seeds."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from margin_retrieval.analysis import stats
from margin_retrieval.analysis.numbers.seeds import aggregate_seeds, average_per_query
from margin_retrieval.analysis.results import TEST_MEASURE
from margin_retrieval.analysis.systems import (
    VARIANT_COLUMNS, ordered, reference_of, references_by_model, system_label, varying_columns,
)

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100", "R@1000")
TEST_COLUMNS = ("reference", "compared_with", "mean_diff", "p_value", "p_holm", "significant", "tost_p",
                "equivalent")


def _variants(rows: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """One row per variant: experiment columns, seeds, and per measure its mean and interval bounds."""
    aggregated = aggregate_seeds(rows)
    variants = aggregated.drop_duplicates("system")[["system", *VARIANT_COLUMNS, "n_seeds", "seeds"]]
    variants = ordered(variants)
    for measure in measures:
        values = aggregated[aggregated["measure"] == measure].set_index("system")
        for column, source in ((measure, "value"), (f"{measure} ci_low", "ci_low"),
                               (f"{measure} ci_high", "ci_high")):
            variants[column] = variants["system"].map(values[source]).astype(float)
    return variants


def _test(scores: Mapping[str, pd.Series], name: str, reference: str, alpha: float, margin: float,
          collection: str) -> dict:
    for needed in (name, reference):
        if needed not in scores:
            raise ValueError(f"no per-query scores for {needed} on {collection}")
    test = stats.paired_ttest(scores[name], scores[reference])
    tost = stats.tost_paired(scores[name], scores[reference], margin=margin, alpha=alpha)
    return {"mean_diff": test["mean_diff"], "p_value": test["p_value"], "tost_p": tost["p_value"],
            "equivalent": tost["equivalent"]}


def main_table(results: pd.DataFrame, per_query: Mapping[str, pd.Series], reference: str | None, alpha: float,
               margin: float, collection: str | None = None,
               measures: Sequence[str] = DEFAULT_MEASURES) -> pd.DataFrame:
    """Per variant of ``collection``: ``measures`` (mean over seeds, with ``<measure> ci_low/ci_high``), and the
    tests against the reference of its own model (``systems.references_by_model`` of the objective or system name
    ``reference``). ``per_query`` maps system name (one per seed) -> per-query nDCG@10 on ``collection``.
    Without a reference the test columns are empty. Metadata (references, alpha, margin, ...) is in ``attrs``."""
    if collection is None:
        collections = sorted(results["collection"].unique())
        if len(collections) != 1:
            raise ValueError(f"results hold several collections {collections}; name one")
        collection = collections[0]
    variants = _variants(results[results["collection"] == collection], measures)
    references = references_by_model(variants, reference) if reference is not None else {}
    scores = average_per_query(per_query)
    with_model = variants.loc[variants["kind"] == "trained", "model"].nunique() > 1
    varying = varying_columns(variants)
    labels = {row["system"]: system_label(row, with_model, varying) for row in variants.to_dict("records")}
    records, raw_p = [], {}
    for row in variants.to_dict("records"):
        compared = reference_of(row, references)
        is_reference = row["system"] in references.values()
        record = {**row, "label": labels[row["system"]], "reference": is_reference,
                  "compared_with": "" if is_reference or compared is None else compared, "mean_diff": math.nan,
                  "p_value": math.nan, "p_holm": math.nan, "significant": False, "tost_p": math.nan,
                  "equivalent": False}
        if record["compared_with"]:
            record.update(_test(scores, row["system"], compared, alpha, margin, collection))
            raw_p[row["system"]] = record["p_value"]
        records.append(record)
    corrected = stats.holm(raw_p, alpha=alpha)
    for record in records:
        if record["system"] in corrected:
            record.update(p_holm=corrected[record["system"]]["p_holm"],
                          significant=corrected[record["system"]]["reject"])
    intervals = [c for m in measures for c in (m, f"{m} ci_low", f"{m} ci_high")]
    table = pd.DataFrame(records, columns=["system", "label", *VARIANT_COLUMNS, "n_seeds", "seeds", *intervals,
                                           *TEST_COLUMNS])
    distinct = list(dict.fromkeys(name for model, name in sorted(references.items()) if model))
    distinct = distinct or list(dict.fromkeys(references.values()))
    table.attrs.update(
        collection=collection, references=distinct, alpha=float(alpha), margin=float(margin),
        measures=list(measures), test_measure=TEST_MEASURE,
        reference=distinct[0] if distinct else None, reference_labels=[labels[name] for name in distinct],
        n_queries=len(scores[distinct[0]]) if distinct and distinct[0] in scores else None,
        max_seeds=int(variants["n_seeds"].max()) if len(variants) else 0,
    )
    return table
