"""Validation during training: re-rank fixed first-stage candidates of held-out training queries (never test queries)."""

from __future__ import annotations

import ir_measures

from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import TrainingData

VALIDATION_MEASURE = ir_measures.nDCG @ 10


def validate(encoder: Encoder, data: TrainingData, config: TrainConfig) -> float:
    """nDCG@10 of re-ranking the validation candidates (unjudged = non-relevant, as trec_eval), scored with the
    encoder's similarity (``encode`` normalises only for cosine), as retrieval will score the exported model."""
    qids = sorted(data.validation_candidates)
    doc_ids = sorted({doc for docs in data.validation_candidates.values() for doc in docs})
    was_training = encoder.model.training
    encoder.model.eval()
    query_emb = encoder.encode([data.query_text[q] for q in qids], config.max_query_length,
                               config.validation_batch_size, config.precision)
    doc_emb = encoder.encode([data.doc_text[d] for d in doc_ids], config.max_doc_length,
                             config.validation_batch_size, config.precision)
    encoder.model.train(was_training)
    row = {doc: i for i, doc in enumerate(doc_ids)}
    run = {}
    for qi, qid in enumerate(qids):
        candidates = data.validation_candidates[qid]
        scores = doc_emb[[row[d] for d in candidates]] @ query_emb[qi]
        run[qid] = {doc: float(score) for doc, score in zip(candidates, scores)}
    qrels = {q: data.validation_qrels.get(q, {}) for q in qids}
    return float(ir_measures.calc_aggregate([VALIDATION_MEASURE], qrels, run)[VALIDATION_MEASURE])
