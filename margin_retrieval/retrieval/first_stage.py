"""A student's zero-shot ranking of the training queries: the first stage that mines its negatives (and, for the
first student, may rank the validation candidates).

The training-data jobs read it as a file (``ranking.tsv``: header ``qid<TAB>doc_id``, each query's documents in rank
order), so the data stage depends on retrieval through the DAG only. Every query with a judged positive is ranked,
to the deepest cut any data job takes (``train_data.negatives.depth`` or ``validation.depth``) plus the most
positives a query has, so that the negative pool keeps its depth once the query's positives are removed; a deeper
list gives the same triples and candidates, which take their own prefix of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Iterable, Sequence

import numpy as np

from margin_retrieval.jobs.io import load_embeddings, write_tsv
from margin_retrieval.retrieval.search import search_shards

log = logging.getLogger(__name__)

Rankings = dict[str, list[str]]


def dense_rankings(query_ids: Sequence[str], query_emb: np.ndarray,
                   doc_shards: Iterable[tuple[Sequence[str], np.ndarray]], k: int,
                   wanted: Iterable[str] | None = None) -> Rankings:
    """Exact inner-product top-k over document shards for the ``wanted`` queries (default: all), with the search
    rule's own exact search and merge (ties by doc id as in the runs)."""
    query_ids = np.asarray([str(q) for q in query_ids])
    rows = np.arange(len(query_ids))
    if wanted is not None:
        wanted = set(wanted)
        missing = wanted - set(query_ids.tolist())
        if missing:
            raise KeyError(f"{len(missing)} queries have no embedding, e.g. {sorted(missing)[:5]}")
        rows = np.flatnonzero(np.isin(query_ids, list(wanted)))
    queries = np.asarray(query_emb)[rows]
    merged = search_shards(query_ids[rows], queries, ((np.asarray(ids, dtype=str), emb) for ids, emb in doc_shards), k)
    return {str(q): [str(d) for d in docs] for q, docs in zip(merged.query_ids, merged.doc_ids)}


def ranking_depth(qrels: dict[str, dict[str, int]], deepest_cut: int) -> int:
    """How deep to rank: the deepest cut a data job takes plus the most judged positives (rel > 0) of a query."""
    return deepest_cut + max((sum(rel > 0 for rel in docs.values()) for docs in qrels.values()), default=0)


def write_student_ranking(queries_path: str | os.PathLike, doc_paths: Sequence[str | os.PathLike],
                          qrels: dict[str, dict[str, int]], deepest_cut: int, out: str | os.PathLike) -> int:
    """The rank_training_queries rule: every query with a judged positive, ranked by the student's embeddings to
    ``ranking_depth``; returns the rows written."""
    start = time.perf_counter()
    query_ids, query_emb = load_embeddings(queries_path)
    embedded = set(query_ids.tolist())
    wanted = sorted(q for q, docs in qrels.items() if q in embedded and any(rel > 0 for rel in docs.values()))
    depth = ranking_depth(qrels, deepest_cut)
    rankings = dense_rankings(query_ids.tolist(), query_emb, (load_embeddings(p) for p in doc_paths), depth, wanted)
    rows = [(qid, doc) for qid in wanted for doc in rankings[qid]]
    write_tsv(out, ["qid", "doc_id"], rows)
    log.info("ranked %d queries to depth %d over %d shards in %.1f s", len(wanted), depth, len(doc_paths),
             time.perf_counter() - start)
    return len(rows)
