"""Evaluation follows trec_eval conventions, checked against values computed by hand and against trectools."""

from __future__ import annotations

import math

import pytest

from margin_retrieval.evaluation.measures import evaluate, evaluate_and_crosscheck, parse_measures

QRELS = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1}}
RUN = """q1 Q0 d2 1 3.0 t
q1 Q0 d1 2 2.0 t
q1 Q0 d9 3 1.0 t
q2 Q0 d4 1 2.0 t
q2 Q0 d3 2 1.0 t
"""
NDCG_Q1 = (1 / math.log2(2) + 2 / math.log2(3)) / (2 / math.log2(2) + 1 / math.log2(3))
NDCG_Q2 = (1 / math.log2(3)) / 1.0


@pytest.fixture
def run_path(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text(RUN)
    return path


def test_graded_ndcg_and_binary_measures_by_hand(run_path):
    aggregate, rows = evaluate(run_path, QRELS, ["nDCG@10", "RR@10", "R@100"])
    per_query = {(m, q): v for m, q, v in rows}
    assert per_query["nDCG@10", "q1"] == pytest.approx(NDCG_Q1)
    assert per_query["nDCG@10", "q2"] == pytest.approx(NDCG_Q2)
    assert aggregate["RR@10"] == pytest.approx((1.0 + 0.5) / 2)
    assert aggregate["R@100"] == pytest.approx(1.0)


def test_binarize_at_two_changes_binary_measures_only(run_path):
    aggregate, _ = evaluate(run_path, QRELS, ["nDCG@10", "RR@10"], binarize_at=2)
    assert aggregate["RR@10"] == pytest.approx((0.5 + 0.0) / 2)  # q1's only rel>=2 doc is at rank 2; q2 has none
    assert aggregate["nDCG@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 2)


def test_judged_query_missing_from_run_counts_as_zero(run_path):
    qrels = {**QRELS, "q3": {"d5": 1}}
    aggregate, rows = evaluate(run_path, qrels, ["nDCG@10"])
    assert ("nDCG@10", "q3", 0.0) in rows
    assert aggregate["nDCG@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 3)


def test_trectools_agrees_on_a_clean_run(run_path):
    aggregate, _ = evaluate_and_crosscheck(run_path, QRELS, ["nDCG@10", "RR@10", "R@100"], strict=True)
    assert all(check["agree"] for check in aggregate["crosscheck"].values())
    assert set(aggregate["crosscheck"]) == {"nDCG@10", "RR@10", "R@100"}


def test_crosscheck_flags_a_run_missing_a_judged_query(run_path):
    qrels = {**QRELS, "q3": {"d5": 1}}
    with pytest.raises(ValueError, match="disagree"):
        evaluate_and_crosscheck(run_path, qrels, ["nDCG@10"], strict=True)


def test_run_of_another_collection_and_duplicate_measures_fail(run_path):
    with pytest.raises(ValueError, match="shares no query"):
        evaluate(run_path, {"x": {"d1": 1}}, ["nDCG@10"])
    with pytest.raises(ValueError, match="duplicates"):
        parse_measures(["RR@10", "RR(rel=1)@10"])
