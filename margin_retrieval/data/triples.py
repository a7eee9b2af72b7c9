"""Training data of the bi-encoders: query splits, first-stage rankings, negative sampling, validation candidates.

Two modes, chosen by the config's ``train_data``:

- **mining** (default, e.g. SciFact): the training queries with at least one judged positive are permuted with the
  seed; the first ``validation_queries`` of the permutation are held out for validation, the rest is ``train_order``
  (a data fraction f takes its first ``ceil(f * n)`` queries, so fractions are nested). For every training query and
  every judged positive (rel > 0), ``per_positive`` negatives are drawn (seeded, per query) from the first stage's
  top-``depth`` with every judged positive of that query removed. The first stage is BM25 (``bm25s``, English
  stopwords, whole corpus; documents with score 0, i.e. no shared term, are not retrieved) or the zero-shot
  student's dense ranking (inner product of its embeddings), which the retrieval stage writes
  (:mod:`margin_retrieval.retrieval.first_stage`) and the jobs read.
- **docpairs** (``train_data.docpairs`` set, the paper's MS MARCO setup): the dataset's own docpairs, grouped by
  :func:`margin_retrieval.data.provided_data.group_docpairs`.

Validation re-ranks fixed candidates: the first stage's top-``validation.depth`` of each held-out query, or, when
``validation.dataset`` names an ir_datasets id (e.g. ``msmarco-passage/trec-dl-2019/judged``), that dataset's
``scoreddocs`` (no hold-out then: every training query trains). ``splits.json`` carries the validation queries'
texts and qrels, because a separate validation dataset's queries are not in the training dataset.

Everything here is pure (dicts and lists in, lists out); the jobs that read datasets and write the files are in
:mod:`margin_retrieval.data.training_data`.
"""

from __future__ import annotations

import logging
import random
from typing import Iterable, Sequence

import numpy as np

from margin_retrieval.data.provided_data import group_docpairs
from margin_retrieval.jobs.errors import ConfigError

log = logging.getLogger(__name__)

Rankings = dict[str, list[str]]


# --------------------------------------------------------------------------------------------------------------------
# queries and splits


def positives(qrels: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """Judged positives (rel > 0) per query, sorted; queries without any are left out."""
    result = {}
    for qid, docs in qrels.items():
        pos = sorted(doc for doc, rel in docs.items() if rel > 0)
        if pos:
            result[qid] = pos
    return result


def seeded_order(qids: Iterable[str], seed: int) -> list[str]:
    """A seeded permutation of the (deduplicated, sorted) query ids: independent of the input order."""
    order = sorted(set(qids))
    random.Random(seed).shuffle(order)
    return order


def split_queries(qids: Iterable[str], n_validation: int, seed: int) -> dict[str, list[str]]:
    """Hold out ``n_validation`` queries (the first of a seeded permutation); the rest, permuted, is ``train_order``."""
    order = seeded_order(qids, seed)
    if n_validation >= len(order):
        raise ConfigError(f"config train_data.validation_queries: {n_validation} would hold out all {len(order)} "
                          f"training queries (those with a judged positive, or docpairs); use fewer than {len(order)}")
    return {"validation": sorted(order[:n_validation]), "train_order": order[n_validation:]}


# --------------------------------------------------------------------------------------------------------------------
# first stages


def _ranked(doc_ids: Sequence[str], indices: np.ndarray, scores: np.ndarray, keep_zero: bool) -> list[str]:
    """Doc ids by decreasing score, ties by doc id (deterministic whatever the top-k routine did)."""
    items = [(float(s), doc_ids[int(i)]) for i, s in zip(indices, scores) if keep_zero or s > 0]
    items.sort(key=lambda item: (-item[0], item[1]))
    return [doc for _, doc in items]


def bm25_rankings(docs: Iterable[tuple[str, str]], queries: dict[str, str], k: int) -> Rankings:
    """BM25 (``bm25s`` defaults: Lucene variant, k1=1.5, b=0.75; English stopwords) top-k of every query."""
    import bm25s

    doc_ids, texts = [], []
    for doc_id, text in docs:
        doc_ids.append(doc_id)
        texts.append(text)
    if not doc_ids:
        raise ValueError("BM25 needs a non-empty corpus")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    qids = sorted(queries)
    if not qids:
        return {}
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", return_ids=False, show_progress=False)
    k = min(k, len(doc_ids))
    indices, scores = retriever.retrieve(tokens, k=k, show_progress=False)
    return {qid: _ranked(doc_ids, indices[i], scores[i], keep_zero=False) for i, qid in enumerate(qids)}


# --------------------------------------------------------------------------------------------------------------------
# triples and candidates


def sample_negatives(train_order: Sequence[str], qrels: dict[str, dict[str, int]], rankings: Rankings, depth: int,
                     per_positive: int, seed: int) -> tuple[list[tuple[str, str, str]], dict]:
    """(qid, pos_id, neg_id) rows in ``train_order``; negatives come from the top-``depth`` of the ranking without
    any judged positive of the query. Each query has its own generator (seed, qid), so a query's triples do not
    depend on which other queries are present."""
    pos_by_query = positives(qrels)
    rows, ranks = [], []
    n_positives = found_in_depth = 0
    without_negatives = []
    for qid in train_order:
        pos = pos_by_query.get(qid, [])
        if not pos:
            continue
        judged_positive = set(pos)
        ranked = rankings.get(qid, [])
        n_positives += len(pos)
        found_in_depth += sum(1 for doc in ranked[:depth] if doc in judged_positive)
        pool = [(rank, doc) for rank, doc in enumerate(ranked, start=1) if doc not in judged_positive][:depth]
        if not pool:
            without_negatives.append(qid)
            continue
        rng = random.Random(f"{seed}/{qid}")
        for pos_id in pos:
            for rank, neg_id in rng.sample(pool, min(per_positive, len(pool))):
                rows.append((qid, pos_id, neg_id))
                ranks.append(rank)
    if without_negatives:
        log.warning("%d training queries have no negative in the first-stage top-%d (e.g. %s): skipped",
                    len(without_negatives), depth, without_negatives[:5])
    stats = {
        "triples": len(rows),
        "train_positives": n_positives,
        "train_positives_in_top_depth": found_in_depth,
        "train_positive_recall_at_depth": found_in_depth / n_positives if n_positives else None,
        "mean_negative_rank": float(np.mean(ranks)) if ranks else None,
        "median_negative_rank": float(np.median(ranks)) if ranks else None,
        "queries_without_negatives": len(without_negatives),
    }
    return rows, stats


def validation_candidates(validation: Sequence[str], rankings: Rankings, depth: int) -> list[tuple[str, str]]:
    """(qid, doc_id) rows: the top-``depth`` of every validation query, in rank order."""
    return [(qid, doc) for qid in validation for doc in rankings.get(qid, [])[:depth]]


def candidate_recall(candidates: Iterable[tuple[str, str]], qrels: dict[str, dict[str, int]],
                     validation: Sequence[str]) -> dict:
    """How many judged positives of the validation queries the candidates contain."""
    by_query: dict[str, set[str]] = {}
    for qid, doc in candidates:
        by_query.setdefault(qid, set()).add(doc)
    pos = positives({q: qrels.get(q, {}) for q in validation})
    total = sum(len(docs) for docs in pos.values())
    found = sum(len(set(docs) & by_query.get(q, set())) for q, docs in pos.items())
    queries_with_hit = sum(1 for q, docs in pos.items() if set(docs) & by_query.get(q, set()))
    return {"validation_positives": total, "validation_positives_in_candidates": found,
            "validation_recall": found / total if total else None,
            "validation_queries_with_a_positive_candidate": queries_with_hit}


def docpair_triples(pairs: Iterable[tuple[str, str, str]], per_query: int, drop_incomplete: bool = True,
                    max_queries: int | None = None) -> list[tuple[str, str, str]]:
    """The provided docpairs, grouped as the original preprocessing did (see ``group_docpairs``)."""
    return list(group_docpairs(pairs, per_query, drop_incomplete, max_queries))


def ordered_unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
