"""Progress lines: done/total, rate and ETA, first and last line always, rate-limited in between, no carriage returns."""

from __future__ import annotations

import logging

import numpy as np

from margin_retrieval.jobs.progress import Progress, format_duration
from tests.tiny_bert import make_tiny_bert


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_format_duration():
    assert [format_duration(s) for s in (0, 42, 185, 7620)] == ["0s", "42s", "3m05s", "2h07m"]


def test_lines_show_done_total_rate_and_eta(caplog):
    clock = FakeClock()
    progress = Progress(100, "encode", unit="texts", interval=10, step_percent=50, clock=clock)
    with caplog.at_level(logging.INFO):
        clock.now = 1.0
        progress.update(10)  # first update: always a line
        clock.now = 2.0
        progress.update(10)  # 1 s and 10% later: none
        clock.now = 12.0
        progress.update(10)  # 10 s later: due
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "encode: 10/100 texts (10.0%), 10.0 texts/s, elapsed 1s, ETA 9s"
    assert lines[1] == "encode: 30/100 texts (30.0%), 2.5 texts/s, elapsed 12s, ETA 28s"
    assert len(lines) == 2


def test_a_fast_job_logs_about_one_line_per_step_percent_plus_the_last(caplog):
    clock = FakeClock()
    progress = Progress(1000, "train", unit="steps", step_percent=10, clock=clock)
    with caplog.at_level(logging.INFO):
        for _ in range(1000):
            clock.now += 0.001
            progress.update(extra=lambda: "loss 1")
    lines = [record.getMessage() for record in caplog.records]
    assert 10 <= len(lines) <= 12
    assert lines[-1].startswith("train: 1,000/1,000 steps (100.0%)") and lines[-1].endswith("ETA 0s, loss 1")


def test_forced_lines_and_a_resumed_start(caplog):
    clock = FakeClock()
    progress = Progress(10, "train", unit="steps", interval=1e9, step_percent=100, start=4, clock=clock)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            clock.now += 2.0
            progress.update(force=True)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3
    assert lines[0] == "train: 5/10 steps (50.0%), 0.5 steps/s, elapsed 2s, ETA 10s"


def test_encoder_logs_progress_to_the_job_log_without_carriage_returns(tmp_path, caplog):
    from margin_retrieval.models.encoders import Encoder

    encoder = Encoder.load(make_tiny_bert(tmp_path / "bert"))
    with caplog.at_level(logging.INFO):
        quiet = encoder.encode(["cell protein"] * 5, 16, batch_size=2)
        assert not [r for r in caplog.records if "encode_docs" in r.getMessage()]
        loud = encoder.encode(["cell protein"] * 5, 16, batch_size=2, progress="encode_docs shard 1/2")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("encode_docs shard 1/2")]
    np.testing.assert_array_equal(quiet, loud)
    assert lines[0].startswith("encode_docs shard 1/2: 2/5 texts")
    assert lines[-1].startswith("encode_docs shard 1/2: 5/5 texts (100.0%)")
    assert not any("\r" in line for line in lines)


def test_training_logs_each_logged_step_and_each_validation_to_the_job_log(tmp_path, caplog):
    from margin_retrieval.training.trainer import Trainer
    from tests.test_training import config, tiny_data

    trainer = Trainer(make_tiny_bert(tmp_path / "bert"), tiny_data(), config(log_every=2, patience=3), tmp_path / "w")
    with caplog.at_level(logging.INFO, logger="margin_retrieval.training.trainer"):
        trainer.fit()
    lines = [r.getMessage() for r in caplog.records if r.name == "margin_retrieval.training.trainer"]
    steps = [line for line in lines if line.startswith("train: ")]
    validations = [line for line in lines if line.startswith("validation at step")]
    # 8 triples, batch 3, 2 epochs: 6 steps, logged (forced lines) at 2, 4 and 6
    assert {"2/6", "4/6", "6/6"} <= {line.split(" ")[1] for line in steps}
    assert all("loss " in line and "lr " in line and "triples/s" in line and "ETA" in line for line in steps)
    assert len(validations) == 4  # steps 0, 2, 4, 6
    assert "best" in validations[0] and "0 of 6 patience steps used" in validations[0]  # 3 validations, 2 apart
