"""Document texts of a training job, fetched when they are tokenized: at paper scale the triples name most of the
8.8M MS MARCO passages (~3 GB of text as a dict), but a step needs only its batch's and the token cache keeps the
recent ones as token ids (``margin_retrieval.training.tokens``)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence


class LazyTexts:
    """Texts by id: ``kept`` (the validation candidates, read at every validation) are held, any other id is fetched
    with ``lookup(ids) -> {id: text}`` on each request (e.g. ``collections.doc_lookup``: the docstore's ``get_many``),
    which raises ``KeyError`` for an id the collection lacks."""

    def __init__(self, lookup: Callable[[list[str]], Mapping[str, str]], kept: Mapping[str, str]):
        self._lookup = lookup
        self._kept = dict(kept)

    def many(self, ids: Sequence[str]) -> list[str]:
        """The texts of ``ids`` in their order, the ones not kept fetched in one lookup."""
        fetch = [i for i in dict.fromkeys(ids) if i not in self._kept]
        fetched = self._lookup(fetch) if fetch else {}
        return [self._kept[i] if i in self._kept else fetched[i] for i in ids]

    def __getitem__(self, text_id: str) -> str:
        return self.many([text_id])[0]


def texts_of(source: Mapping[str, str] | LazyTexts, ids: Sequence[str]) -> list[str]:
    """The texts of ``ids`` from a dict or a ``LazyTexts`` (one lookup for all ids, not one per id)."""
    return source.many(ids) if isinstance(source, LazyTexts) else [source[i] for i in ids]
