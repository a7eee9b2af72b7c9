"""Token ids of a training job's texts, tokenized on first use and kept for reuse: tokenizing costs ~0.7 ms a
passage, and validation re-ranks the same candidates each time.

The cache is bounded: an unbounded one grew with every text a job ever saw, most of MS MARCO's 8.8M passages in a
paper run (tens of GB as lists of Python ints). Two parts:

- the ``keep`` ids (the validation candidates and queries: fixed, re-encoded at every validation) are never evicted;
- any other row (a batch's texts) stays among the ``ROWS_KEPT`` most recently used ones.

``ROWS_KEPT`` holds a small collection whole (SciFact: 5K passages, 800 queries), so that it tokenizes each text once
per job as before; at MS MARCO scale a passage recurs too rarely for a bigger cache to matter, and 100K rows of int32
ids take ~40 MB (passages of ~80 tokens) besides what ``keep`` holds. Rows are a pure function of the text, so the
bound changes no result, only how often a text is tokenized again.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from margin_retrieval.training.texts import LazyTexts, texts_of

ROWS_KEPT = 100_000


class TokenCache:
    """Unpadded token-id rows of texts looked up by id, truncated to ``max_length``; ``texts`` is a dict or a
    ``LazyTexts`` (texts fetched when a row is tokenized)."""

    def __init__(self, tokenize: Callable[[list[str], int], list[list[int]]], texts: Mapping[str, str] | LazyTexts,
                 max_length: int, keep: Iterable[str] = (), capacity: int | None = None):
        self._tokenize = tokenize
        self._texts = texts
        self.max_length = max_length
        self.capacity = ROWS_KEPT if capacity is None else capacity
        self._keep = frozenset(keep)
        self._kept: dict[str, np.ndarray] = {}
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()  # least recently used first

    def rows(self, ids: Sequence[str]) -> list[list[int]]:
        """The rows of ``ids`` in their order; the ids not cached are tokenized in one call."""
        found, missing = {}, []
        for i in dict.fromkeys(ids):
            row = self._cached(i)
            if row is None:
                missing.append(i)
            else:
                found[i] = row
        if missing:
            for i, row in zip(missing, self._tokenize(texts_of(self._texts, missing), self.max_length)):
                found[i] = np.asarray(row, dtype=np.int32)
                (self._kept if i in self._keep else self._recent)[i] = found[i]
            while len(self._recent) > self.capacity:
                self._recent.popitem(last=False)
        return [found[i].tolist() for i in ids]

    def _cached(self, text_id: str) -> np.ndarray | None:
        row = self._kept.get(text_id)
        if row is None:
            row = self._recent.get(text_id)
            if row is not None:
                self._recent.move_to_end(text_id)
        return row

    def __len__(self) -> int:
        """Rows held now."""
        return len(self._kept) + len(self._recent)

    def text(self, text_id: str) -> str:
        return self._texts[text_id]
