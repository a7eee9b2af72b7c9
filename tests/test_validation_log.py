"""Validation returns the per-query nDCG@10 with its mean, and every ``validation`` event of the training log
carries both."""

from __future__ import annotations

import dataclasses

import ir_measures
import pytest

from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.trainer import Trainer
from margin_retrieval.training.validation import VALIDATION_MEASURE, ValidationResult, validate
from tests.test_training import config, read_log, tiny_data


def wide_validation():
    """The tiny data with five validation queries: graded labels, two relevant documents, and one query without any
    judged document (it counts as 0 in the mean, as it always did)."""
    data = tiny_data()
    data.query_text |= {"q5": "heart blood", "q6": "brain sleep"}
    data.validation_candidates = {"q8": ["d8", "d9", "d0"], "q9": ["d9", "d1", "d2"], "q5": ["d5", "d6", "d4", "d3"],
                                  "q6": ["d6", "d7", "d1"], "q7": ["d7", "d2"]}
    data.validation_qrels = {"q8": {"d8": 1}, "q9": {"d9": 2, "d1": 1}, "q5": {"d5": 1, "d4": 2}, "q6": {"d7": 1},
                             "q7": {}}
    return data


def test_mean_is_calc_aggregates_value_and_per_query_is_iter_calcs(tiny_bert):
    encoder, data = Encoder.load(tiny_bert), wide_validation()
    result = validate(encoder, data, config())
    # The run validate scored, rebuilt from the texts, to evaluate it the way validation did before per-query values.
    qids = sorted(data.validation_candidates)
    queries = dict(zip(qids, encoder.encode([data.query_text[q] for q in qids], 8, 64, "fp32")))
    doc_ids = sorted({d for docs in data.validation_candidates.values() for d in docs})
    docs = dict(zip(doc_ids, encoder.encode([data.doc_text[d] for d in doc_ids], 12, 64, "fp32")))
    run = {q: {d: float(docs[d] @ queries[q]) for d in data.validation_candidates[q]} for q in qids}
    expected = ir_measures.calc_aggregate([VALIDATION_MEASURE], data.validation_qrels, run)[VALIDATION_MEASURE]
    assert result.mean == expected  # exactly: early stopping compares these values
    per_query = {m.query_id: m.value for m in ir_measures.iter_calc([VALIDATION_MEASURE], data.validation_qrels, run)}
    assert result.per_query == pytest.approx(per_query, abs=1e-12)
    assert list(result.per_query) == ["q5", "q6", "q7", "q8", "q9"] and result.per_query["q7"] == 0  # sorted


def test_log_values_keep_the_mean_and_round_the_per_query_values():
    result = ValidationResult(0.123456789, {"a": 0.1234564999, "b": 1.0})
    assert result.log_values() == {"nDCG@10": 0.123456789, "per_query": {"a": 0.123456, "b": 1.0}}


def test_every_validation_event_logs_the_per_query_values(tiny_bert, tmp_path):
    data = wide_validation()
    trainer = Trainer(tiny_bert, data, dataclasses.replace(config(), max_epochs=1), tmp_path / "work")
    trainer.fit()
    validations = [e for e in read_log(trainer.log_path) if e["event"] == "validation"]
    assert [e["step"] for e in validations] == [0, 2, 3]
    for event in validations:
        assert set(event["per_query"]) == {"q5", "q6", "q7", "q8", "q9"}
        values = event["per_query"].values()
        assert all(round(v, 6) == v for v in values)
        assert event["nDCG@10"] == pytest.approx(sum(values) / len(values), abs=1e-6)
