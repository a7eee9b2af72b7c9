"""Per-system summaries: MTEB/BEIR-shaped scores, the run's config, seed and version."""

from __future__ import annotations

import json

from margin_retrieval.evaluation.summary import SCHEMA, mteb_key, write_summary
from margin_retrieval.jobs.io import read_json


def test_mteb_keys():
    assert [mteb_key(m) for m in ("nDCG@10", "RR@10", "R@1000", "P@5", "AP", "RR(rel=2)@10")] == [
        "ndcg_at_10", "mrr_at_10", "recall_at_1000", "precision_at_5", "map", "mrr_rel_2_at_10"]


def test_summary_holds_measures_config_seed_training_and_version(tmp_path):
    aggregate = {"nDCG@10": 0.5, "RR@10": 0.4, "definitions": {"nDCG@10": "nDCG@10", "RR@10": "RR(rel=1)@10"},
                 "crosscheck": {"nDCG@10": {"agree": True}}, "judged_queries": 10}
    (tmp_path / "agg.json").write_text(json.dumps(aggregate))
    log = tmp_path / "train_log.jsonl"
    log.write_text(json.dumps({"event": "start", "step": 0}) + "\n"
                   + json.dumps({"event": "end", "step": 6, "best_step": 4, "best_value": 0.7,
                                 "stopped_reason": "max_steps", "seconds": 3.0, "triples_seen": 24}) + "\n")
    config = {"training": {"seed": 3}, "train_data": {"seed": 5}}
    system = {"system": "trained/x", "kind": "trained", "objective": "adaptive"}
    write_summary(str(tmp_path / "out.json"), aggregate_path=str(tmp_path / "agg.json"), collection="c",
                  collection_spec={"dataset": "beir/scifact/test"}, system=system, run_config=config,
                  train_log=str(log))
    summary = read_json(tmp_path / "out.json")
    assert summary["schema"] == SCHEMA and summary["task_name"] == "c"
    assert summary["scores"]["test"] == [{"main_score": 0.5, "main_measure": "nDCG@10", "hf_subset": "default",
                                          "ndcg_at_10": 0.5, "mrr_at_10": 0.4}]
    assert summary["measures"] == {"nDCG@10": 0.5, "RR@10": 0.4} and summary["crosscheck_agrees"]
    assert summary["training"]["best_value"] == 0.7 and summary["training"]["best_step"] == 4
    assert summary["seed"] == {"training": 3, "train_data": 5} and summary["config"] == config
    assert summary["version"]["package"] and summary["system"] == system
