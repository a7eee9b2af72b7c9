"""The judged positives among a batch's documents, for the losses that take other triples' documents as negatives
(``training.mask_batch_positives``).

Random batches often hold two triples of one query (SciFact: about one batch in six), and then the positive of
one triple is, to the other triple's query, an in-batch negative although it is judged relevant to it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch


def batch_positives(batch: Sequence[tuple[str, str, str]], positives: Mapping[str, set[str]]) -> torch.Tensor:
    """The ``positive_mask`` of ``margin_retrieval.training.losses`` for a batch of (qid, pos_id, neg_id) triples:
    a bool tensor [B, 2B] whose columns are the batch's documents p_1..p_B, n_1..n_B and whose (i, j) is True where
    that document is in ``positives[q_i]`` (a query without an entry has none)."""
    columns: dict[str, list[int]] = {}
    for j, doc in enumerate([p for _, p, _ in batch] + [n for _, _, n in batch]):
        columns.setdefault(doc, []).append(j)
    mask = torch.zeros(len(batch), 2 * len(batch), dtype=torch.bool)
    for i, (qid, _, _) in enumerate(batch):
        for doc in positives.get(qid, ()):  # a query's few positives, not the batch's 2B documents
            mask[i, columns.get(doc, [])] = True
    return mask
