"""Training triples held compactly: a paper-scale run reads tens of millions of (qid, pos_id, neg_id) triples, which
as Python tuples of strings cost ~200 bytes each (10 GB at 50M); here a triple is three int32 indices into two id
tables (12 bytes), and an id is stored once however many triples name it."""

from __future__ import annotations

from array import array
from typing import Iterable, Iterator, Sequence

import numpy as np

ITERATION_CHUNK = 65536  # triples resolved to strings at a time when iterating, so iterating never copies them all


class Triples:
    """``len(triples)`` triples; ``triples[i]`` is the (qid, pos_id, neg_id) tuple of triple ``i`` and ``batch``
    the three id lists of a batch. ``query_ids``/``doc_ids`` are numpy string arrays (each id once, in order of first
    appearance); ``q``, ``p``, ``n`` are int32 arrays of positions in them, one entry per triple."""

    def __init__(self, query_ids: np.ndarray, doc_ids: np.ndarray, q: np.ndarray, p: np.ndarray, n: np.ndarray):
        if not len(q) == len(p) == len(n):
            raise ValueError(f"triple columns of unequal length: {len(q)}, {len(p)}, {len(n)}")
        self.query_ids, self.doc_ids, self.q, self.p, self.n = query_ids, doc_ids, q, p, n

    @classmethod
    def from_tuples(cls, rows: Iterable[Sequence[str]]) -> Triples:
        builder = TriplesBuilder()
        for qid, pos, neg in rows:
            builder.add(qid, pos, neg)
        return builder.build()

    def __len__(self) -> int:
        return len(self.q)

    def __getitem__(self, i: int) -> tuple[str, str, str]:
        return self.query_ids[self.q[i]].item(), self.doc_ids[self.p[i]].item(), self.doc_ids[self.n[i]].item()

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        for start in range(0, len(self), ITERATION_CHUNK):
            yield from zip(*self.batch(np.arange(start, min(start + ITERATION_CHUNK, len(self)))))

    def batch(self, indices: Sequence[int] | np.ndarray) -> tuple[list[str], list[str], list[str]]:
        """The query ids, positive ids and negative ids of the triples at ``indices``, in their order."""
        indices = np.asarray(indices, dtype=np.int64)
        return (self.query_ids[self.q[indices]].tolist(), self.doc_ids[self.p[indices]].tolist(),
                self.doc_ids[self.n[indices]].tolist())

    def nbytes(self) -> int:
        """Bytes of the arrays (what the triples hold beyond a few Python objects)."""
        return sum(a.nbytes for a in (self.query_ids, self.doc_ids, self.q, self.p, self.n))


class TriplesBuilder:
    """Appends triples one at a time (a file is streamed, never held as rows): ids are numbered on first sight and
    the indices go to C arrays of 4-byte ints."""

    def __init__(self):
        self._queries: dict[str, int] = {}
        self._docs: dict[str, int] = {}
        self._columns = (array("i"), array("i"), array("i"))
        if self._columns[0].itemsize != 4:
            raise RuntimeError(f"array('i') holds {self._columns[0].itemsize}-byte ints here, not 4")

    def add(self, qid: str, pos: str, neg: str) -> None:
        q, p, n = self._columns
        q.append(self._queries.setdefault(qid, len(self._queries)))
        p.append(self._docs.setdefault(pos, len(self._docs)))
        n.append(self._docs.setdefault(neg, len(self._docs)))

    def __len__(self) -> int:
        return len(self._columns[0])

    def build(self) -> Triples:
        q, p, n = (np.frombuffer(column, dtype=np.int32) if len(column) else np.zeros(0, np.int32)
                   for column in self._columns)
        return Triples(_id_table(self._queries), _id_table(self._docs), q, p, n)


def _id_table(ids: dict[str, int]) -> np.ndarray:
    # dict order is numbering order; a fixed-width numpy string array holds MS MARCO's 7-digit ids in 28 bytes each.
    return np.array(list(ids), dtype=str) if ids else np.zeros(0, dtype=str)
