"""Stopping rules replayed on logged curves decide as the trainer does, and their table counts regret and cost."""

from __future__ import annotations

import pytest

from margin_retrieval.analysis.numbers.stopping_rules import candidate_rules, replay, replay_table, rule_summary
from margin_retrieval.training.stopping import StoppingRule

# step 0 is the untrained model; a dip at 9-18, the real rise after it, jitter of 0.002 late in the run
CURVE = [(0, 0.60), (9, 0.595), (18, 0.598), (27, 0.63), (36, 0.65), (45, 0.652), (54, 0.651), (63, 0.653)]


def test_the_classic_rule_stops_on_the_early_dip_and_keeps_the_untrained_model():
    result = replay(CURVE, StoppingRule(min_delta=0.0, min_steps=0, patience_steps=18))
    assert (result.end_step, result.stopped, result.kept_step, result.kept_value) == (18, True, 0, 0.60)


def test_min_steps_lets_the_run_reach_its_rise():
    result = replay(CURVE, StoppingRule(min_delta=0.0, min_steps=27, patience_steps=18))
    assert (result.end_step, result.kept_step, result.kept_value) == (63, 63, 0.653)  # jitter still counts
    assert not result.stopped


def test_min_delta_ignores_jitter_and_stops_after_the_plateau():
    result = replay(CURVE, StoppingRule(min_delta=0.005, min_steps=27, patience_steps=18))
    # 0.652 and 0.653 do not beat 0.65 by more than 0.005: the best stays at step 36, the stop comes at 54
    assert (result.end_step, result.stopped, result.kept_step, result.kept_value) == (54, True, 36, 0.65)


def test_a_disabled_rule_trains_to_the_end_and_keeps_the_best():
    result = replay(CURVE, StoppingRule(0.0, 0, 9, enabled=False))
    assert (result.end_step, result.stopped, result.kept_step) == (63, False, 63)


def test_the_table_counts_regret_cost_and_wrongly_kept_untrained_models():
    rules = candidate_rules([0.0], [18], [0, 27])
    assert set(rules) == {"min_delta=0/patience=18/min_steps=0", "min_delta=0/patience=18/min_steps=27"}
    rows = replay_table({"run": CURVE}, rules, noise=0.01)
    by_rule = {row["rule"]: row for row in rows}
    early = by_rule["min_delta=0/patience=18/min_steps=0"]
    assert early["regret"] == pytest.approx(0.053) and early["untrained_kept_wrongly"]
    summary = rule_summary(rows)
    assert [row["rule"] for row in summary] == ["min_delta=0/patience=18/min_steps=27",
                                                "min_delta=0/patience=18/min_steps=0"]
    assert summary[0]["mean_regret"] == 0 and summary[0]["budget_share"] == 1
    assert summary[1]["budget_share"] == pytest.approx(18 / 63) and summary[1]["untrained_kept_wrongly"] == 1


def test_a_rise_inside_the_noise_is_no_wrongly_kept_untrained_model():
    flat = [(0, 0.60), (9, 0.59), (18, 0.605), (27, 0.598)]
    rows = replay_table({"flat": flat}, candidate_rules([0.01], [18], [0]), noise=0.01)
    assert rows[0]["kept_step"] == 0 and not rows[0]["untrained_kept_wrongly"]


def test_a_replay_stops_where_the_trainer_stops_under_the_same_rule(tiny_bert, tmp_path):
    from margin_retrieval.training.trainer import Trainer
    from tests.test_training import config, read_log, tiny_data

    def run(name: str, **overrides) -> list[dict]:
        trainer = Trainer(tiny_bert, tiny_data(), config(validate_every=1, learning_rate=0.05, max_epochs=5,
                                                           **overrides), tmp_path / name)
        trainer.fit()
        return read_log(trainer.log_path)

    full = run("full", early_stopping=False)
    stopped = run("stopped", patience_steps=2, min_delta=0.001)
    curve = [(event["step"], event["nDCG@10"]) for event in full if event["event"] == "validation"]
    result = replay(curve, StoppingRule(min_delta=0.001, min_steps=0, patience_steps=2))
    end = stopped[-1]
    assert result.stopped and end["stopped_reason"] == "early_stopping"  # the tiny run does stop early
    assert (result.kept_step, result.kept_value) == (end["best_step"], pytest.approx(end["best_value"]))
    assert result.end_step == max(event["step"] for event in stopped if event["event"] == "validation")
