"""Teacher scores for Margin-MSE: the teacher bi-encoder's similarity of each triple's query to its two documents.
Published scores read from a file are ``margin_retrieval.data.teacher_scores`` (no torch: the data jobs read them)."""

from __future__ import annotations

import logging
from typing import Iterable, Mapping

import numpy as np

from margin_retrieval.models.encoders import Encoder

log = logging.getLogger(__name__)

SIMILARITIES = ("cosine", "dot")
HEADER = ("qid", "pos_id", "neg_id", "teacher_pos", "teacher_neg")


def score_triples(encoder: Encoder, triples: Iterable[tuple[str, str, str]], query_text: Mapping[str, str],
                  doc_text: Mapping[str, str], max_query_length: int, max_doc_length: int, batch_size: int,
                  similarity: str = "cosine", precision: str = "auto") -> list[tuple[str, str, str, float, float]]:
    """``(qid, pos_id, neg_id, teacher_pos, teacher_neg)`` per triple, in the input order.

    Each distinct query and document is encoded once. ``cosine`` scores normalised embeddings, ``dot`` the raw
    pooled ones (the original Margin-MSE teacher score).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown teacher similarity {similarity!r}; expected one of {', '.join(SIMILARITIES)}")
    triples = [tuple(t) for t in triples]
    qids = sorted({q for q, _, _ in triples})
    doc_ids = sorted({d for _, p, n in triples for d in (p, n)})
    missing_q = [q for q in qids if q not in query_text]
    missing_d = [d for d in doc_ids if d not in doc_text]
    if missing_q or missing_d:
        raise KeyError(f"no text for {len(missing_q)} queries (e.g. {missing_q[:3]}) and {len(missing_d)} documents "
                       f"(e.g. {missing_d[:3]}) of the triples")
    normalize = similarity == "cosine"
    log.info("teacher: encoding %d queries and %d documents (%s)", len(qids), len(doc_ids), similarity)
    query_emb = encoder.encode([query_text[q] for q in qids], max_query_length, batch_size, precision,
                               normalize=normalize, progress="score_teacher queries")
    doc_emb = encoder.encode([doc_text[d] for d in doc_ids], max_doc_length, batch_size, precision,
                             normalize=normalize, progress="score_teacher documents")
    q_row = {q: i for i, q in enumerate(qids)}
    d_row = {d: i for i, d in enumerate(doc_ids)}
    q_index = np.array([q_row[q] for q, _, _ in triples], dtype=np.int64)
    p_index = np.array([d_row[p] for _, p, _ in triples], dtype=np.int64)
    n_index = np.array([d_row[n] for _, _, n in triples], dtype=np.int64)
    # float64 accumulation: the scores are written as text and read back as targets.
    queries = query_emb[q_index].astype(np.float64)
    pos = np.einsum("ij,ij->i", queries, doc_emb[p_index].astype(np.float64))
    neg = np.einsum("ij,ij->i", queries, doc_emb[n_index].astype(np.float64))
    return [(q, p, n, float(sp), float(sn)) for (q, p, n), sp, sn in zip(triples, pos, neg)]
