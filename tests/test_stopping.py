"""The noise-sized stopping rule: improvements beyond min_delta, patience in steps, no stop before min_steps, the
untrained model kept only when nothing beats it by more than the noise, and the exported model best or last."""

from __future__ import annotations

import math

import pytest
import torch

from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.stopping import StoppingRule
from margin_retrieval.training.trainer import Trainer
from margin_retrieval.training.validation import validate
from tests.test_training import config, read_log, tiny_data


def replay(rule: StoppingRule, curve: list[tuple[int, float]]) -> tuple[int, int]:
    """(step at which the rule stops, or the last step; best step) over a validation curve."""
    best, best_step = -math.inf, None
    for step, value in curve:
        if rule.improves(value, best):
            best, best_step = value, step
        if rule.should_stop(step, best_step):
            return step, best_step
    return curve[-1][0], best_step


CURVE = [(0, 0.60), (10, 0.603), (20, 0.598), (30, 0.62), (40, 0.618), (50, 0.619), (60, 0.617), (70, 0.64)]


def test_classic_rule_stops_after_patience_validations_without_a_new_best():
    # patience 2 validations 10 steps apart: the best 0.62 at step 30, no new best at 40 and 50 -> stop at 50.
    assert replay(StoppingRule(min_delta=0.0, min_steps=0, patience_steps=20), CURVE) == (50, 30)


def test_min_delta_ignores_rises_inside_the_noise():
    # +0.003 at step 10 is noise at min_delta 0.005: the best stays step 0, and patience runs out at step 20.
    assert replay(StoppingRule(min_delta=0.005, min_steps=0, patience_steps=20), CURVE) == (20, 0)
    # with patience to spare, the real rise at step 30 (+0.02) becomes the best
    assert replay(StoppingRule(min_delta=0.005, min_steps=0, patience_steps=30), CURVE) == (60, 30)


def test_no_stop_before_min_steps_and_patience_counts_steps_not_validations():
    assert replay(StoppingRule(min_delta=0.005, min_steps=70, patience_steps=20), CURVE) == (70, 70)
    dense = [(step, 0.6) for step in range(0, 41, 5)]  # validations twice as often: same patience in steps
    assert replay(StoppingRule(min_delta=0.0, min_steps=0, patience_steps=20), dense) == (20, 0)
    assert not StoppingRule(0.0, 0, 20, enabled=False).should_stop(1000, 0)


def test_patience_steps_default_to_patience_validations():
    rule = StoppingRule.from_config(config(patience=3, validate_every=4, min_delta=0.01, min_steps=8))
    assert rule == StoppingRule(min_delta=0.01, min_steps=8, patience_steps=12, enabled=True)
    assert StoppingRule.from_config(config(patience=3, validate_every=4, patience_steps=5)).patience_steps == 5


def test_a_run_whose_validation_never_beats_step_0_by_min_delta_keeps_and_names_the_untrained_model(
        tiny_bert, tmp_path):
    data = tiny_data()
    trainer = Trainer(tiny_bert, data, config(validate_every=1, patience=2, learning_rate=0.05, max_epochs=3,
                                               min_delta=1.0), tmp_path / "work")
    untrained = {k: v.clone() for k, v in trainer.encoder.model.state_dict().items()}
    summary = trainer.fit()
    assert summary["best_step"] == 0 and summary["kept_untrained"] and summary["stopped_reason"] == "early_stopping"
    assert read_log(trainer.log_path)[-1]["kept_untrained"] is True
    trainer.export(tmp_path / "model", tmp_path / "log.jsonl")
    kept = Encoder.load(tmp_path / "model").model.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in untrained.items())


def test_export_last_publishes_the_final_model_and_no_early_stop_trains_to_the_end(
        tiny_bert, tmp_path):
    data = tiny_data()
    trainer = Trainer(tiny_bert, data, config(validate_every=1, patience=1, learning_rate=0.05, max_epochs=3,
                                               early_stopping=False, export="last"), tmp_path / "work")
    summary = trainer.fit()
    assert summary["stopped_reason"] == "max_steps" and summary["exported"] == "last"
    assert summary["exported_step"] == trainer.steps and not summary["kept_untrained"]
    final = {k: v.clone() for k, v in trainer.encoder.model.state_dict().items()}
    trainer.export(tmp_path / "model", tmp_path / "log.jsonl")
    kept = Encoder.load(tmp_path / "model")
    assert all(torch.equal(kept.model.state_dict()[k], v) for k, v in final.items())
    assert validate(kept, data, trainer.config).mean == pytest.approx(
        [e for e in read_log(tmp_path / "log.jsonl") if e["event"] == "validation"][-1]["nDCG@10"], abs=1e-6)
