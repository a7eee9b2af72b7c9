"""Training data that an ir_datasets collection already provides (the paper's MS MARCO setup).

- ``msmarco-passage/train`` docpairs (qidpidtriples) grouped as the original preprocessing did: the first
  ``per_query`` docpairs of each query in file order, dropping every query with fewer;
- validation candidates from a collection's ``scoreddocs`` (e.g. the official TREC DL 2019 top-1000).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Iterator


def group_docpairs(pairs: Iterable[tuple[str, str, str]], per_query: int, drop_incomplete: bool = True,
                   max_queries: int | None = None) -> Iterator[tuple[str, str, str]]:
    """Yield (qid, pos_id, neg_id) in file order, at most ``per_query`` per query.

    ``pairs`` is called twice through ``iter``: the first pass counts (so memory holds one counter per query, not
    the 397M pairs), the second emits. Pass a re-iterable (a list, or an object whose ``__iter__`` restarts).
    """
    counts: Counter[str] = Counter()
    for qid, _, _ in pairs:
        if counts[qid] < per_query:
            counts[qid] += 1
    # Counter keeps first-appearance order, so max_queries takes the first queries of the file.
    kept = [q for q, c in counts.items() if c >= per_query or not drop_incomplete][:max_queries]
    kept = set(kept)
    emitted: Counter[str] = Counter()
    for qid, pos_id, neg_id in pairs:
        if qid in kept and emitted[qid] < per_query:
            emitted[qid] += 1
            yield qid, pos_id, neg_id


def candidates_from_scoreddocs(scoreddocs: Iterable[tuple[str, str, float]], depth: int) -> list[tuple[str, str]]:
    """The ``depth`` best-scored candidates per query, ties broken by doc id for determinism."""
    by_query: dict[str, list[tuple[float, str]]] = {}
    for qid, doc_id, score in scoreddocs:
        by_query.setdefault(qid, []).append((score, doc_id))
    rows = []
    for qid in sorted(by_query):
        ranked = sorted(by_query[qid], key=lambda item: (-item[0], item[1]))[:depth]
        rows.extend((qid, doc_id) for _, doc_id in ranked)
    return rows
