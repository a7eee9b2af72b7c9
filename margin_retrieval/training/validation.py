"""Validation during training: re-rank fixed first-stage candidates of held-out training queries (never test queries)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import ir_measures

from margin_retrieval.jobs.io import atomic_path
from margin_retrieval.models.encoders import Encoder, longest_first
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import TrainingData
from margin_retrieval.training.tokens import TokenCache

VALIDATION_MEASURE = ir_measures.nDCG @ 10
PER_QUERY_DECIMALS = 6  # in the training log: far below any difference a validation set of ~50 queries resolves


@dataclass(frozen=True)
class ValidationResult:
    """One validation: the mean nDCG@10 (what early stopping compares) and the value of each query (what
    the noise of a comparison between two validations is estimated from)."""

    mean: float
    per_query: dict[str, float]

    def log_values(self) -> dict:
        """The fields of a ``validation`` event of ``train_log.jsonl``: ``nDCG@10`` unrounded, as it always was,
        and ``per_query`` rounded to ``PER_QUERY_DECIMALS``."""
        return {"nDCG@10": self.mean,
                "per_query": {qid: round(value, PER_QUERY_DECIMALS) for qid, value in self.per_query.items()}}


def validate(encoder: Encoder, data: TrainingData, config: TrainConfig, query_tokens: TokenCache | None = None,
             doc_tokens: TokenCache | None = None) -> ValidationResult:
    """nDCG@10 of re-ranking the validation candidates (unjudged = non-relevant, as trec_eval), scored with the
    encoder's similarity (``encode`` normalises only for cosine), as retrieval will score the exported model.

    The mean is ``ir_measures.calc_aggregate``'s: the same per-query values, added in the same order by the measure's
    own aggregator.

    Pass the job's token caches to tokenize the candidates once per job instead of once per validation; the
    embeddings are those of ``encoder.encode`` on the texts either way (same batches, same order).
    """
    qids = sorted(data.validation_candidates)
    doc_ids = sorted({doc for docs in data.validation_candidates.values() for doc in docs})
    if query_tokens is None or doc_tokens is None:
        query_tokens, doc_tokens = validation_token_caches(encoder, data, config)
    query_emb = _encode(encoder, query_tokens, qids, config)
    doc_emb = _encode(encoder, doc_tokens, doc_ids, config)
    row = {doc: i for i, doc in enumerate(doc_ids)}
    run = {}
    for qi, qid in enumerate(qids):
        candidates = data.validation_candidates[qid]
        scores = doc_emb[[row[d] for d in candidates]] @ query_emb[qi]
        run[qid] = {doc: float(score) for doc, score in zip(candidates, scores)}
    qrels = {q: data.validation_qrels.get(q, {}) for q in qids}
    aggregator, per_query = VALIDATION_MEASURE.aggregator(), {}
    for metric in ir_measures.iter_calc([VALIDATION_MEASURE], qrels, run):
        aggregator.add(metric.value)
        per_query[metric.query_id] = float(metric.value)
    return ValidationResult(float(aggregator.result()), dict(sorted(per_query.items())))


def validation_token_caches(encoder: Encoder, data: TrainingData,
                            config: TrainConfig) -> tuple[TokenCache, TokenCache]:
    """Token caches of queries and documents that keep the validation queries' and candidates' rows for good: they
    are re-encoded at every validation."""
    candidates = {doc for docs in data.validation_candidates.values() for doc in docs}
    return (TokenCache(encoder.tokenize, data.query_text, config.max_query_length, keep=data.validation_candidates),
            TokenCache(encoder.tokenize, data.doc_text, config.max_doc_length, keep=candidates))


def _encode(encoder: Encoder, tokens: TokenCache, ids: list[str], config: TrainConfig):
    order = longest_first([tokens.text(i) for i in ids])
    return encoder.encode_tokens(tokens.rows(ids), order, config.validation_batch_size, config.precision)


def save_untrained(path: Path, result: ValidationResult, condition: dict) -> None:
    """Write a student's untrained validation (rule ``validate_untrained``) with the ``condition`` it was computed
    under (device type, precision, similarity): the step-0 validation that every run of the student shares."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"condition": condition, "nDCG@10": result.mean, "per_query": result.per_query},
                                  indent=1) + "\n")


def load_untrained(path: Path, condition: dict) -> ValidationResult | None:
    """The untrained validation saved at ``path`` if it was computed under ``condition``; None (validate anew) if
    not: a job on another device or in another precision scores the same weights slightly differently."""
    saved = json.loads(Path(path).read_text())
    if saved["condition"] != condition:
        return None
    return ValidationResult(saved["nDCG@10"], saved["per_query"])
