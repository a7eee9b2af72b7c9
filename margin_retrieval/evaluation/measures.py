"""Evaluate a TREC run with ir_measures, cross-checked by an independent implementation (trectools).

Conventions (they decide which numbers are comparable across papers):
- binary measures (RR, R, AP, P) count a document relevant at label >= ``binarize_at`` (2 on TREC DL); nDCG uses the
  graded labels as linear gains (trec_eval's ``ndcg_cut``);
- every judged query (every query of the qrels, even one whose labels are all 0) counts, a judged query missing
  from the run scoring 0: the mean is over the judged queries, never over the retrieved ones;
- run queries without judgments are ignored.

trectools averages over the run's queries instead and hard-codes ``rel > 0``, so the cross-check feeds it the run
restricted to judged queries, in trec_eval order, and qrels binarised at ``binarize_at``. On a run that holds every
judged query with strictly decreasing scores the two libraries then agree to rounding; a disagreement means a broken
run (a missing judged query, ties) or a changed library.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from typing import Iterable, Sequence

import ir_measures
import pandas as pd
from pandas.errors import Pandas4Warning
from trectools import TrecEval, TrecQrel, TrecRun

from margin_retrieval.jobs.io import write_json, write_tsv
from margin_retrieval.jobs.progress import Progress
from margin_retrieval.retrieval.runs import read_run

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]
# trectools method per ir_measures measure name; each takes the cut-off as ``depth``.
_TRECTOOLS = {"nDCG": "get_ndcg", "RR": "get_reciprocal_rank", "R": "get_recall", "AP": "get_map",
              "P": "get_precision"}


def parse_measures(names: Iterable[str], binarize_at: int = 1) -> dict[str, ir_measures.Measure]:
    """Config names -> ir_measures measures; ``binarize_at`` becomes ``rel=`` of every measure that has one.

    nDCG has no ``rel`` (it is graded) and is left alone; an explicit ``rel`` in a name (``RR(rel=2)@10``) wins.
    """
    measures = {}
    for name in names:
        measure = ir_measures.parse_measure(name)
        if "rel" in measure.SUPPORTED_PARAMS and "rel" not in measure.params:
            measure = measure(rel=binarize_at)
        if measure in measures.values():
            raise ValueError(f"measure {name!r} duplicates another configured measure ({measure})")
        measures[name] = measure
    return measures


def _run_frame(run_path: str | os.PathLike, qrels: Qrels) -> pd.DataFrame:
    run = read_run(run_path)
    if not run["query_id"].isin(set(qrels)).any():
        raise ValueError(f"{run_path} shares no query with the qrels: wrong collection?")
    return run


def _evaluate_frame(run: pd.DataFrame, qrels: Qrels,
                    parsed: dict[str, ir_measures.Measure]) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    judged = sorted(qrels)
    name_of = {measure: name for name, measure in parsed.items()}
    values = {(name, qid): 0.0 for name in parsed for qid in judged}  # a judged query absent from the run scores 0
    for metric in ir_measures.iter_calc(list(parsed.values()), qrels, run[["query_id", "doc_id", "score"]]):
        if metric.query_id in qrels:
            values[name_of[metric.measure], metric.query_id] = float(metric.value)
    rows = [(name, qid, values[name, qid]) for name in parsed for qid in judged]
    aggregate = {name: math.fsum(values[name, qid] for qid in judged) / len(judged) for name in parsed}
    return aggregate, rows


def evaluate(run_path: str | os.PathLike, qrels: Qrels, measures: Sequence[str],
             binarize_at: int = 1) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """Mean of each measure over all judged queries, and the per-query values ``(measure, query_id, value)``."""
    return _evaluate_frame(_run_frame(run_path, qrels), qrels, parse_measures(measures, binarize_at))


def _trectools_run(run: pd.DataFrame, judged: set[str]) -> TrecRun:
    """Judged queries only, sorted as trec_eval reads a run (trectools' nDCG uses the row order as given)."""
    frame = run[run["query_id"].isin(judged)].rename(
        columns={"query_id": "query", "doc_id": "docid", "tag": "system"})
    frame = frame.sort_values(["query", "score", "docid"], ascending=[True, False, False]).reset_index(drop=True)
    trec_run = TrecRun()
    trec_run.load_run_from_dataframe(frame)
    return trec_run


def _trectools_qrels(qrels: Qrels, level: int | None) -> TrecQrel:
    """Graded labels (``level`` None, for nDCG) or labels binarised at ``level``, since trectools tests ``rel > 0``."""
    frame = pd.DataFrame([(qid, "0", doc, rel) for qid, docs in qrels.items() for doc, rel in docs.items()],
                         columns=["query", "q0", "docid", "rel"])
    if level is not None:
        frame["rel"] = (frame["rel"] >= level).astype(int)
    trec_qrel = TrecQrel()
    trec_qrel.qrels_data = frame
    return trec_qrel


def _trectools_method(measure: ir_measures.Measure) -> str | None:
    """The trectools method computing ``measure``, or None where trectools has no equivalent."""
    params = set(measure.params) - {"rel"}
    if measure.NAME not in _TRECTOOLS or params != {"cutoff"}:
        return None
    return _TRECTOOLS[measure.NAME]


def _crosscheck_frame(run: pd.DataFrame, qrels: Qrels, parsed: dict[str, ir_measures.Measure]) -> dict[str, float]:
    trec_run = _trectools_run(run, set(qrels))
    results = {}
    checked = {name: measure for name, measure in parsed.items() if _trectools_method(measure) is not None}
    progress = Progress(len(checked), "evaluate: trectools cross-check", unit="measures", logger=log)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)  # trectools' `inplace=` sorts, deprecated in pandas 3
        for name, measure in checked.items():
            level = None if measure.NAME == "nDCG" else measure.params.get("rel", 1)
            evaluator = TrecEval(trec_run, _trectools_qrels(qrels, level))
            results[name] = float(getattr(evaluator, _trectools_method(measure))(depth=measure.params["cutoff"]))
            progress.update(extra=name)
    return results


def evaluate_and_crosscheck(run_path: str | os.PathLike, qrels: Qrels, measures: Sequence[str], binarize_at: int = 1,
                            tolerance: float = 1e-6,
                            strict: bool = True) -> tuple[dict, list[tuple[str, str, float]]]:
    """``evaluate`` plus a ``"crosscheck"`` block {measure: {ir_measures, trectools, agree}}.

    With ``strict`` a disagreement beyond ``tolerance`` raises; otherwise it is only recorded (and logged). The
    aggregate also names each measure's exact ir_measures definition and counts the judged queries the run lacks,
    the usual cause of a disagreement.
    """
    parsed = parse_measures(measures, binarize_at)
    run = _run_frame(run_path, qrels)
    log.info("evaluate: %d measures, %d run lines, %d judged queries", len(parsed), len(run), len(qrels))
    aggregate, rows = _evaluate_frame(run, qrels, parsed)
    log.info("evaluate: ir_measures done")
    crosscheck = {name: {"ir_measures": aggregate[name], "trectools": value,
                         "agree": abs(aggregate[name] - value) <= tolerance}
                  for name, value in _crosscheck_frame(run, qrels, parsed).items()}
    disagreements = {name: check for name, check in crosscheck.items() if not check["agree"]}
    if disagreements:
        message = f"{run_path}: ir_measures and trectools disagree beyond {tolerance}: {disagreements}"
        if strict:
            raise ValueError(message)
        log.warning(message)
    return {**aggregate, "crosscheck": crosscheck, "definitions": {name: str(m) for name, m in parsed.items()},
            "judged_queries": len(qrels),
            "judged_queries_missing_from_run": len(set(qrels) - set(run["query_id"]))}, rows


def evaluate_to_files(run_path: str | os.PathLike, qrels: Qrels, measures: Sequence[str], binarize_at: int,
                      per_query_path: str | os.PathLike, aggregate_path: str | os.PathLike,
                      tolerance: float = 1e-6, strict: bool = True) -> dict:
    """The evaluate rule: per-query long table (``measure query_id value``) and the aggregate JSON."""
    aggregate, rows = evaluate_and_crosscheck(run_path, qrels, measures, binarize_at, tolerance, strict)
    write_tsv(per_query_path, ["measure", "query_id", "value"], rows)
    write_json(aggregate_path, aggregate)
    log.info("%s: %s", run_path, {name: aggregate[name] for name in measures})
    return aggregate
