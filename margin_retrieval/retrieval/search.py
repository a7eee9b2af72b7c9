"""Inner-product search of document shards (exact: BLAS + partition; approximate: a faiss index), merged exactly
into one top-k list.

Sharding exists because a large collection's embeddings do not fit in memory at once (MS MARCO at 768-d fp32 is
27 GB). The merge is exact: every document of the global top-k under the run order (score descending, doc id
descending, ``runs.trec_order``) is in its own shard's top-k under the same order, so merging per-shard lists gives
the same result as searching the whole collection. "Same" is up to float32 rounding: BLAS may round one inner product
differently (by one ulp, ~1e-7) depending on where the document sits in its block, so two documents whose scores
differ by that much (near-duplicates) can swap places between a sharded and an unsharded search.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Iterable, Iterator, NamedTuple, Sequence

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from margin_retrieval.jobs.io import load_embeddings, save_npz
from margin_retrieval.retrieval.runs import PAD_ID, trec_order, write_run

log = logging.getLogger(__name__)

# faiss 1.15 uses BLAS only when n_queries * dim >= this (default 128000: below ~333 queries at 384-d it takes a
# per-query SIMD loop); BLAS measured ~5x faster at 100 queries x 100k docs, and never slower here.
BLAS_THRESHOLD = 1
# Scores held at once by exact search (256 MB of float32): queries are scored in blocks of this many scores.
SCORE_BLOCK_FLOATS = 2**26


class TopK(NamedTuple):
    """Search results of all queries: ``doc_ids``/``scores`` are [Q, k] rows in run order.

    A slot an approximate index could not fill holds ``PAD_ID`` and score -inf.
    """

    query_ids: np.ndarray
    doc_ids: np.ndarray
    scores: np.ndarray


def configure_faiss(threads: int | None) -> None:
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    if threads:
        faiss.omp_set_num_threads(threads)


def _as_float32(embeddings: np.ndarray) -> np.ndarray:
    """faiss computes in float32; float16 shards (half the disk and load memory) are cast on the way in."""
    return np.ascontiguousarray(embeddings, dtype=np.float32)


def _doc_id_ranks(doc_ids: np.ndarray) -> np.ndarray:
    """Integer stand-ins for the doc ids that sort like the strings: ties are broken on these, not on strings."""
    ranks = np.empty(len(doc_ids), dtype=np.int64)
    ranks[np.argsort(doc_ids, kind="stable")] = np.arange(len(doc_ids))
    return ranks


def _exact_knn(queries: np.ndarray, docs: np.ndarray, k: int, id_ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k rows ``(scores, labels)`` in run order, every document tied at rank k considered.

    The scores are one BLAS product per block of queries and the top k a linear-time partition of each row:
    faiss's knn keeps a heap of k results per query, which at SciFact's k/n (1,000 of 5,183) measured slower than
    the product itself. Integer labels until the end: tie-breaking compares doc-id ranks, not strings.
    """
    scores = np.empty((len(queries), k), dtype=np.float32)
    labels = np.empty((len(queries), k), dtype=np.int64)
    block = max(1, SCORE_BLOCK_FLOATS // len(docs))
    for start in range(0, len(queries), block):
        rows = slice(start, start + block)
        scores[rows], labels[rows] = _block_top_k(queries[rows] @ docs.T, k, id_ranks)
    return scores, labels


def _block_top_k(scores: np.ndarray, k: int, id_ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top k of each row under the run order: a linear-time partition picks k documents, a row where more
    documents tie with its k-th score than made the cut chooses among them by the run order, and one int64 key per
    document orders the k."""
    n = scores.shape[1]
    labels = np.argpartition(scores, n - k, axis=1)[:, n - k :]  # the k-th largest score first
    top = np.take_along_axis(scores, labels, 1)
    kth = top[:, :1]
    for row in np.flatnonzero(np.count_nonzero(scores >= kth, axis=1) > k):
        tied = np.flatnonzero(scores[row] >= kth[row])
        labels[row] = tied[np.argsort(_run_order_keys(scores[row, tied], id_ranks[tied]))[-k:]]
        top[row] = scores[row, labels[row]]
    order = np.argsort(_run_order_keys(top, id_ranks[labels]), axis=1)[:, ::-1]
    return np.take_along_axis(top, order, 1), np.take_along_axis(labels, order, 1)


def _run_order_keys(scores: np.ndarray, id_ranks: np.ndarray) -> np.ndarray:
    """int64 keys whose ascending order is (score, doc id) ascending, the reverse of the run order: the float32 bits
    mapped to an order-preserving unsigned integer in the high half, the doc-id rank in the low half."""
    bits = (scores + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into 0.0: equal scores, equal keys
    ordered = np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31)).astype(np.uint64)
    return ((ordered << np.uint64(32)) | id_ranks.astype(np.uint64)).view(np.int64) ^ np.int64(-(1 << 63))


def _index_knn(queries: np.ndarray, docs: np.ndarray, k: int, index_factory: str,
               search_params: str) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-k with a faiss index built (and trained) on this shard alone."""
    index = faiss.index_factory(docs.shape[1], index_factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(docs)
    index.add(docs)
    if search_params:
        faiss.ParameterSpace().set_index_parameters(index, search_params)
    return index.search(queries, k)


def _top_k(doc_ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k of each row under the run order (padding last)."""
    order = trec_order(doc_ids, scores)[:, :k]
    return np.take_along_axis(doc_ids, order, -1), np.take_along_axis(scores, order, -1)


def search_shard(query_ids: np.ndarray, query_emb: np.ndarray, doc_ids: np.ndarray, doc_emb: np.ndarray, k: int,
                 index_factory: str = "Flat", threads: int | None = None, search_params: str = "") -> TopK:
    """Top-min(k, n_docs) documents of the shard for every query by inner product (cosine on normalised inputs).

    ``index_factory`` "Flat" is exact search; any other faiss factory string (e.g. "IVF64,Flat", or the paper-scale
    "OPQ32,IVF262144_HNSW32,PQ32,RFlat") builds and trains that index on the shard; ``search_params`` are faiss
    ParameterSpace settings such as "nprobe=32".
    """
    doc_ids = np.asarray(doc_ids, dtype=str)
    queries, docs = _as_float32(query_emb), _as_float32(doc_emb)
    if len(doc_ids) != len(docs) or len(query_ids) != len(queries):
        raise ValueError("ids and embeddings differ in length")
    if queries.shape[1] != docs.shape[1]:
        raise ValueError(f"query dim {queries.shape[1]} != doc dim {docs.shape[1]}")
    k = min(k, len(docs))
    if k == 0:
        return TopK(np.asarray(query_ids), np.empty((len(queries), 0), str), np.empty((len(queries), 0), np.float32))
    configure_faiss(threads)
    if index_factory == "Flat":
        with threadpool_limits(threads):
            scores, labels = _exact_knn(queries, docs, k, _doc_id_ranks(doc_ids))
        return TopK(np.asarray(query_ids), doc_ids[labels], scores)
    scores, labels = _index_knn(queries, docs, k, index_factory, search_params)
    found = labels >= 0
    ids = np.where(found, doc_ids[np.where(found, labels, 0)], PAD_ID)
    return TopK(np.asarray(query_ids), *_top_k(ids, np.where(found, scores, -np.inf).astype(np.float32), k))


def merge_topk(shard_results: Sequence[TopK], k: int) -> TopK:
    """The global top-k from per-shard top-k lists of the same queries (exact, see the module docstring)."""
    if not shard_results:
        raise ValueError("no shard results to merge")
    query_ids = shard_results[0].query_ids
    for result in shard_results[1:]:
        if not np.array_equal(result.query_ids, query_ids):
            raise ValueError("shards were searched with different query sets")
    doc_ids = np.concatenate([np.asarray(r.doc_ids, dtype=str) for r in shard_results], axis=1)
    scores = np.concatenate([r.scores for r in shard_results], axis=1)
    return TopK(query_ids, *_top_k(doc_ids, scores, k))


def save_topk(path: str | os.PathLike, topk: TopK) -> None:
    save_npz(path, query_ids=np.asarray(topk.query_ids, dtype=str), doc_ids=np.asarray(topk.doc_ids, dtype=str),
              scores=topk.scores)


def load_topk(path: str | os.PathLike) -> TopK:
    with np.load(path, allow_pickle=False) as data:
        return TopK(data["query_ids"], data["doc_ids"], data["scores"])


def search_shards(query_ids: np.ndarray, query_emb: np.ndarray,
                  doc_shards: Iterable[tuple[np.ndarray, np.ndarray]], k: int, index_factory: str = "Flat",
                  threads: int | None = None, search_params: str = "") -> TopK:
    """The top-k over every shard of a corpus, each shard searched with ``search_shard`` and merged into the running
    top-k as it comes: one shard's embeddings in memory at a time (``doc_shards`` may load them lazily). Without any
    document, every query's list is empty."""
    merged = TopK(np.asarray(query_ids), np.empty((len(query_ids), 0), str), np.empty((len(query_ids), 0), np.float32))
    for doc_ids, doc_emb in doc_shards:
        if not len(doc_ids):
            continue
        shard = search_shard(query_ids, query_emb, doc_ids, doc_emb, k, index_factory, threads, search_params)
        merged = merge_topk([merged, shard], k)
    return merged


def _logged_shards(paths: Sequence[str | os.PathLike], n_queries: int, k: int,
                   index_factory: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each shard's embeddings, loaded when the search reaches it; a line per shard says how long it took."""
    for number, path in enumerate(paths, start=1):
        doc_ids, doc_emb = load_embeddings(path)
        log.info("shard %d of %d: searching %d docs (%s, %s) with %d queries for the top %d", number, len(paths),
                 len(doc_ids), index_factory, doc_emb.dtype, n_queries, k)
        start = time.perf_counter()
        yield doc_ids, doc_emb
        seconds = time.perf_counter() - start
        log.info("shard %d of %d searched in %.1f s (%.1f queries/s)", number, len(paths), seconds,
                 n_queries / max(seconds, 1e-9))


def search_files(queries_path: str | os.PathLike, docs_paths: Sequence[str | os.PathLike],
                 out_path: str | os.PathLike, k: int, index_factory: str = "Flat", threads: int | None = None,
                 search_params: str = "") -> TopK:
    """The search rule: a collection's queries against every shard of its corpus, in one job (a sharded
    paper-scale corpus would otherwise be thousands of minute-long cluster jobs) -> one top-k file."""
    query_ids, query_emb = load_embeddings(queries_path)
    shards = _logged_shards(docs_paths, len(query_ids), k, index_factory)
    topk = search_shards(query_ids, query_emb, shards, k, index_factory, threads, search_params)
    save_topk(out_path, topk)
    return topk


def write_run_from_topk(topk_path: str | os.PathLike, queries_path: str | os.PathLike, out_path: str | os.PathLike,
                        tag: str) -> int:
    """The write_run rule: the TREC run of every query of the collection from its top-k file."""
    topk = load_topk(topk_path)
    all_query_ids, _ = load_embeddings(queries_path)
    lines = write_run(out_path, topk.query_ids, topk.doc_ids, topk.scores, tag, all_query_ids.tolist())
    log.info("wrote %d lines for %d queries", lines, len(all_query_ids))
    return lines
