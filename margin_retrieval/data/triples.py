"""Training data of the bi-encoders: query splits, first-stage rankings, negative sampling, validation candidates.

Two modes, chosen by the config's ``train_data``:

- **mining** (default, e.g. SciFact): the training queries with at least one judged positive are permuted with the
  seed; the first ``validation_queries`` of the permutation are held out for validation, the rest is ``train_order``
  (a data fraction f takes its first ``ceil(f * n)`` queries, so fractions are nested). For every training query and
  every judged positive (rel > 0), ``per_positive`` negatives are drawn (seeded, per query) from the first stage's
  top-``depth`` with every judged positive of that query removed. The first stage is BM25 (``bm25s``, English
  stopwords, whole corpus; documents with score 0, i.e. no shared term, are not retrieved) or the zero-shot
  student's dense ranking (inner product of its embeddings).
- **docpairs** (``train_data.docpairs`` set, the paper's MS MARCO setup): the dataset's own docpairs, grouped by
  :func:`margin_retrieval.data.provided_data.group_docpairs`.

Validation re-ranks fixed candidates: the first stage's top-``validation.depth`` of each held-out query, or, when
``validation.dataset`` names an ir_datasets id (e.g. ``msmarco-passage/trec-dl-2019/judged``), that dataset's
``scoreddocs`` (no hold-out then: every training query trains). ``splits.json`` carries the validation queries'
texts and qrels, because a separate validation dataset's queries are not in the training dataset.

Everything except :func:`make_training_data` is pure (dicts and lists in, lists out).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from margin_retrieval.io import load_embeddings
from margin_retrieval.data.provided_data import candidates_from_scoreddocs, group_docpairs

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
        raise ValueError(f"validation_queries={n_validation} leaves no training query ({len(order)} queries have a "
                         f"judged positive)")
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


def dense_rankings(query_ids: Sequence[str], query_emb: np.ndarray,
                   doc_shards: Iterable[tuple[Sequence[str], np.ndarray]], k: int,
                   wanted: Iterable[str] | None = None, block: int = 1024) -> Rankings:
    """Exact inner-product top-k over document shards (merged), for the ``wanted`` queries (default: all)."""
    query_ids = [str(q) for q in query_ids]
    rows = list(range(len(query_ids)))
    if wanted is not None:
        wanted = set(wanted)
        missing = wanted - set(query_ids)
        if missing:
            raise KeyError(f"{len(missing)} queries have no embedding, e.g. {sorted(missing)[:5]}")
        rows = [i for i, q in enumerate(query_ids) if q in wanted]
    queries = np.asarray(query_emb, dtype=np.float32)[rows]
    best: list[list[tuple[float, str]]] = [[] for _ in rows]
    for ids, emb in doc_shards:
        ids = [str(d) for d in ids]
        emb = np.asarray(emb, dtype=np.float32)
        kk = min(k, len(ids))
        if kk == 0:
            continue
        for start in range(0, len(rows), block):
            scores = queries[start:start + block] @ emb.T
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < len(ids) else \
                np.broadcast_to(np.arange(len(ids)), scores.shape)
            for j, cols in enumerate(top):
                best[start + j].extend((float(scores[j, c]), ids[c]) for c in cols)
    result = {}
    for j, row in enumerate(rows):
        items = sorted(best[j], key=lambda item: (-item[0], item[1]))[:k]
        result[query_ids[row]] = [doc for _, doc in items]
    return result


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


# --------------------------------------------------------------------------------------------------------------------
# the training_data rule


class _Docpairs:
    """A re-iterable view of a dataset's docpairs as (qid, pos_id, neg_id) (group_docpairs reads it twice)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return ((pair.query_id, pair.doc_id_a, pair.doc_id_b) for pair in self.dataset.docpairs_iter())


def _first_stage(source: str, dataset, query_text: dict[str, str], wanted: set[str], k: int,
                 query_embeddings: str | None, doc_embeddings: Sequence[str]) -> Rankings:
    from margin_retrieval.data import collections

    if not wanted:
        return {}
    if source == "bm25":
        docs = collections.docs_slice(dataset, 0, collections.doc_count(dataset))
        return bm25_rankings(docs, {q: query_text[q] for q in wanted}, k)
    if source == "student":
        if not query_embeddings or not doc_embeddings:
            raise ValueError("first stage 'student' needs the zero-shot student's query and doc embeddings")
        query_ids, query_emb = load_embeddings(query_embeddings)
        shards = (load_embeddings(path) for path in doc_embeddings)
        return dense_rankings(query_ids.tolist(), query_emb, shards, k, wanted=wanted)
    raise ValueError(f"unknown first stage {source!r} (bm25 | student)")


def make_training_data(dataset, train_data: dict, outputs: dict[str, str | Path],
                       query_embeddings: str | None = None, doc_embeddings: Sequence[str] = ()) -> dict:
    """Write splits.json, triples.tsv, validation_candidates.tsv and stats.json (each atomically); return the stats.

    ``dataset`` is the loaded training collection; ``train_data`` the config section (schema defaults applied or
    not); ``outputs`` maps splits/triples/candidates/stats to paths.
    """
    from margin_retrieval.data import collections
    from margin_retrieval.io import write_json, write_tsv

    start = time.perf_counter()
    seed = int(train_data.get("seed", 0))
    negatives = {"source": "bm25", "depth": 100, "per_positive": 1} | (train_data.get("negatives") or {})
    validation_cfg = {"dataset": None, "candidates": "bm25", "depth": 20} | (train_data.get("validation") or {})
    docpairs = train_data.get("docpairs")
    n_validation = int(train_data.get("validation_queries", 80))
    val_depth = int(validation_cfg["depth"])

    query_text = collections.queries(dataset)
    qrels = collections.qrels(dataset)

    # Separate validation dataset (its scoreddocs are the candidates) or held-out training queries.
    separate = validation_cfg.get("dataset")
    if separate:
        val_dataset = collections.load_id(separate)
        val_qrels_all = collections.qrels(val_dataset)
        val_text_all = collections.queries(val_dataset)
        scored = ((s.query_id, s.doc_id, s.score) for s in val_dataset.scoreddocs_iter())
        candidate_rows = candidates_from_scoreddocs(scored, val_depth)
        judged = set(positives(val_qrels_all))
        candidate_rows = [(q, d) for q, d in candidate_rows if q in judged and q in val_text_all]
        validation = ordered_unique(q for q, _ in candidate_rows)
        if not validation:
            raise ValueError(f"validation dataset {separate!r}: no query has both scoreddocs and a judged positive")
        val_text = {q: val_text_all[q] for q in validation}
        val_qrels = {q: val_qrels_all.get(q, {}) for q in validation}
    else:
        validation, val_text, val_qrels, candidate_rows = None, None, None, None

    def order(qids):
        """(validation, train_order): a separate validation set stays; otherwise it is held out from ``qids``."""
        if separate:
            return validation, seeded_order(qids, seed)
        split = split_queries(qids, n_validation, seed)
        return split["validation"], split["train_order"]

    stats: dict = {"seed": seed}
    if docpairs:
        per_query = int(docpairs.get("per_query", 128))
        triples = docpair_triples(_Docpairs(dataset), per_query, bool(docpairs.get("drop_incomplete", True)),
                                  docpairs.get("max_queries"))
        validation, train_order = order(ordered_unique(q for q, _, _ in triples))
        held_out = set(validation)  # never train on a validation query
        triples = [t for t in triples if t[0] not in held_out]
        rank_by_query = {q: i for i, q in enumerate(train_order)}
        triples.sort(key=lambda t: rank_by_query[t[0]])  # stable: file order within a query
        stats |= {"mode": "docpairs", "negatives_source": "docpairs", "triples": len(triples),
                  "docpairs_per_query": per_query}
        rankings_needed: set[str] = set()
    else:
        validation, train_order = order(set(positives(qrels)) & set(query_text))
        rankings_needed = set(train_order)
        stats |= {"mode": "mining", "negatives_source": negatives["source"],
                  "negatives_depth": int(negatives["depth"]), "per_positive": int(negatives["per_positive"])}

    if not separate:
        val_text = {q: query_text[q] for q in validation}
        val_qrels = {q: qrels.get(q, {}) for q in validation}

    # First-stage rankings: one pass per source for everything that needs it.
    first_stage_seconds = 0.0
    rankings: dict[str, Rankings] = {}
    needs: dict[str, tuple[set[str], int]] = {}
    if rankings_needed:
        pos_by_query = positives(qrels)
        max_pos = max(len(pos_by_query.get(q, [])) for q in rankings_needed)
        needs[negatives["source"]] = (set(rankings_needed), int(negatives["depth"]) + max_pos)
    if not separate:
        wanted, k = needs.get(validation_cfg["candidates"], (set(), 0))
        needs[validation_cfg["candidates"]] = (wanted | set(validation), max(k, val_depth))
    for source, (wanted, k) in needs.items():
        t0 = time.perf_counter()
        rankings[source] = _first_stage(source, dataset, query_text, wanted, k, query_embeddings, doc_embeddings)
        first_stage_seconds += time.perf_counter() - t0
        log.info("first stage %s: top-%d of %d queries in %.1f s", source, k, len(wanted),
                 time.perf_counter() - t0)

    if not docpairs:
        triples, mining_stats = sample_negatives(train_order, qrels, rankings[negatives["source"]],
                                                 int(negatives["depth"]), int(negatives["per_positive"]), seed)
        stats |= mining_stats
    if not separate:
        candidate_rows = validation_candidates(validation, rankings[validation_cfg["candidates"]], val_depth)
    if not triples:
        raise ValueError("no training triple was produced")

    stats |= {
        "train_queries": len(train_order),
        "train_queries_with_triples": len({q for q, _, _ in triples}),
        "validation_queries": len(validation),
        "validation_source": separate or "held-out training queries",
        "validation_candidates_source": "scoreddocs" if separate else validation_cfg["candidates"],
        "validation_depth": val_depth,
        "validation_candidates": len(candidate_rows),
        **candidate_recall(candidate_rows, val_qrels, validation),
        "first_stage_seconds": round(first_stage_seconds, 2),
    }
    splits = {"validation": list(validation), "train_order": list(train_order),
              "validation_queries": val_text, "validation_qrels": val_qrels}
    write_json(outputs["splits"], splits)
    write_tsv(outputs["triples"], ["qid", "pos_id", "neg_id"], triples)
    write_tsv(outputs["candidates"], ["qid", "doc_id"], candidate_rows)
    stats["seconds"] = round(time.perf_counter() - start, 2)
    write_json(outputs["stats"], stats)
    log.info("training data: %s", stats)
    return stats
