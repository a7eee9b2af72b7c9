"""TREC run files that every evaluation tool reads the same way.

trec_eval (and so ``ir_measures``/pytrec_eval) re-sorts a run by score descending and breaks score ties by doc id
*descending*, ignoring the rank column; trectools breaks them differently depending on the measure. A run whose
scores strictly decrease within each query has one reading only, so ``write_run``:

- orders each query's documents by score descending, then doc id descending (trec_eval's tie order, ``trec_order``);
- writes scores with ``SCORE_DECIMALS`` fixed decimals and, where two consecutive scores would print equal (a true
  tie, or values closer than the last decimal), lowers the later one by one unit of the last decimal, cascading, so
  the printed scores strictly decrease in exactly that order (a tie of t documents moves scores by at most t units,
  i.e. t * 1e-9);
- writes every query it is told exists, and refuses a query without results: a dense retriever returns documents for
  every query, so an empty one means a broken upstream step, not a legitimate zero.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from margin_retrieval.jobs.io import atomic_path

SCORE_DECIMALS = 9
# Marks a top-k slot that an approximate index could not fill (its score is -inf); never written to a run.
PAD_ID = ""
RUN_COLUMNS = ["query_id", "q0", "doc_id", "rank", "score", "tag"]
_MIN_UNITS = np.iinfo(np.int64).min // 4  # stands in for -inf scores; far below any real score, no overflow


def trec_order(doc_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-row indices that sort [Q, M] results by score descending, then doc id descending (trec_eval's order).

    A float sort of the scores orders every row without equal scores; only rows with ties pay for the lexsort on
    the ids (strings sort ~5x slower than floats).
    """
    doc_ids, scores = np.asarray(doc_ids), np.asarray(scores)
    order = np.argsort(-scores, axis=-1, kind="stable")
    ordered = np.take_along_axis(scores, order, -1)
    tied = (ordered[..., 1:] == ordered[..., :-1]).any(axis=-1)
    if tied.any():
        order[tied] = np.lexsort((doc_ids[tied], scores[tied]), axis=-1)[..., ::-1]
    return order


def strictly_decreasing_units(scores: np.ndarray) -> np.ndarray:
    """Scores of rows already in trec order as integers of 10**-SCORE_DECIMALS, nudged to strictly decrease.

    With w[i] = u[i] + i, the running minimum of w minus i equals min(u[i], u'[i-1] - 1): each value drops to one
    unit below its predecessor only when needed, which keeps the given order and moves untied scores not at all.
    """
    finite = np.isfinite(scores)
    units = np.where(finite, np.round(np.where(finite, scores, 0.0).astype(np.float64) * 10**SCORE_DECIMALS),
                     _MIN_UNITS).astype(np.int64)
    position = np.arange(units.shape[-1], dtype=np.int64)
    return np.minimum.accumulate(units + position, axis=-1) - position


def format_units(units: int) -> str:
    return f"{units / 10**SCORE_DECIMALS:.{SCORE_DECIMALS}f}"


def _check_tokens(kind: str, values: Sequence[str]) -> None:
    """A TREC run is whitespace-separated: an empty id or one containing whitespace would shift the columns."""
    if len(" ".join(values).split()) != len(values):
        raise ValueError(f"{kind} must be non-empty and free of whitespace for a TREC run")


def _row_of_query(query_ids: np.ndarray, all_query_ids: Sequence[str]) -> dict[str, int]:
    rows = {str(qid): i for i, qid in enumerate(query_ids)}
    if len(rows) != len(query_ids):
        raise ValueError("duplicate query ids in the search results")
    unexpected = sorted(set(rows) - set(map(str, all_query_ids)))
    if unexpected:
        raise ValueError(f"{len(unexpected)} result queries are not in the query set, e.g. {unexpected[:5]}")
    missing = [qid for qid in all_query_ids if str(qid) not in rows]
    if missing:
        raise ValueError(f"{len(missing)} queries have no search results, e.g. {missing[:5]}")
    return rows


def write_run(path: str | os.PathLike, query_ids: np.ndarray, doc_ids: np.ndarray, scores: np.ndarray, tag: str,
              all_query_ids: Sequence[str]) -> int:
    """Write a 6-column TREC run (``qid Q0 docid rank score tag``) of every query in ``all_query_ids``.

    ``doc_ids``/``scores`` are [Q, k] rows aligned with ``query_ids``, in any order; ``PAD_ID`` slots are dropped.
    Returns the number of lines written.
    """
    query_ids, doc_ids, scores = np.asarray(query_ids), np.asarray(doc_ids, dtype=str), np.asarray(scores)
    if doc_ids.shape != scores.shape or doc_ids.shape[:1] != query_ids.shape:
        raise ValueError(f"shapes disagree: query_ids {query_ids.shape}, doc_ids {doc_ids.shape}, scores {scores.shape}")
    valid = doc_ids != PAD_ID
    if not np.isfinite(scores[valid]).all():
        raise ValueError("non-finite scores in the search results")
    _check_tokens("the tag", [tag])
    _check_tokens("query ids", [str(q) for q in all_query_ids])
    _check_tokens("doc ids", doc_ids[valid].tolist())
    rows = _row_of_query(query_ids, all_query_ids)
    order = trec_order(np.where(valid, doc_ids, PAD_ID), np.where(valid, scores, -np.inf))
    doc_ids, valid = np.take_along_axis(doc_ids, order, -1), np.take_along_axis(valid, order, -1)
    units = strictly_decreasing_units(np.take_along_axis(np.where(valid, scores, -np.inf), order, -1))
    empty = [qid for qid in all_query_ids if not valid[rows[str(qid)]].any()]
    if empty:
        raise ValueError(f"{len(empty)} queries retrieved no document, e.g. {empty[:5]}")
    lines = 0
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        for qid in all_query_ids:
            row = rows[str(qid)]
            text = _run_lines(qid, doc_ids[row][valid[row]].tolist(), units[row][valid[row]].tolist(), tag)
            handle.write("".join(text))
            lines += len(text)
    return lines


def _run_lines(qid: str, doc_ids: list[str], units: list[int], tag: str) -> list[str]:
    """One query's run lines. Python lists, not numpy scalars, in the loop: iterating numpy rows per line measured
    ~5x slower than the search that produced them."""
    return [f"{qid} Q0 {doc} {rank} {format_units(unit)} {tag}\n"
            for rank, (doc, unit) in enumerate(zip(doc_ids, units), start=1)]


def read_run(path: str | os.PathLike) -> pd.DataFrame:
    """Read a TREC run into columns ``RUN_COLUMNS``, ids kept as strings (no '007' -> 7, no 'NA' -> NaN)."""
    run = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, na_filter=False)
    if run.shape[1] != len(RUN_COLUMNS) or (run == "").to_numpy().any():
        raise ValueError(f"{path}: every line must have exactly {len(RUN_COLUMNS)} columns")
    run.columns = RUN_COLUMNS
    return run.astype({"rank": "int64", "score": "float64"})
