"""What `precision: auto` resolves to: the configured value wins, CUDA is fp16, a CPU follows its measured decision."""

from __future__ import annotations

import pytest
import torch

from margin_retrieval.jobs.io import write_json
from margin_retrieval.models import precision


def test_bf16_is_chosen_only_for_a_clear_speed_up():
    assert precision.choose({"fp32": 2.0, "bf16": 1.0}) == "bf16"
    assert precision.choose({"fp32": 1.05, "bf16": 1.0}) == "fp32"  # faster, but not by BF16_MIN_SPEEDUP
    assert precision.choose({"fp32": 1.0, "bf16": 1.35}) == "fp32"


def test_a_configured_precision_is_kept_and_auto_is_fp16_on_cuda(tmp_path):
    decision = tmp_path / "precision.json"
    write_json(decision, {"precision": "bf16"})
    assert precision.resolve("fp32", torch.device("cpu"), decision) == "fp32"
    assert precision.resolve("auto", torch.device("cuda"), decision) == "fp16"


def test_auto_on_a_cpu_reads_the_workflows_decision(tmp_path):
    for chosen in ("bf16", "fp32"):
        write_json(tmp_path / "precision.json", {"precision": chosen})
        assert precision.resolve("auto", torch.device("cpu"), tmp_path / "precision.json") == chosen


def test_without_native_bf16_the_decision_is_fp32_unmeasured(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision, "measure", lambda: pytest.fail("emulated bf16 must not be measured"))
    record = precision.write_decision(tmp_path / "precision.json")
    assert record["precision"] == "fp32" and "emulated" in record["reason"]


def test_with_native_bf16_the_decision_follows_the_measurement(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "measure", lambda: {"fp32": 0.3, "bf16": 0.4})
    record = precision.write_decision(tmp_path / "precision.json")
    assert record["precision"] == "fp32" and record["bf16_speedup"] == pytest.approx(0.75)


def test_the_probe_times_both_precisions():
    seconds = precision.measure()
    assert set(seconds) == {"fp32", "bf16"} and all(value > 0 for value in seconds.values())


def test_an_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="precision 'fp8'"):
        precision.autocast_context(torch.device("cpu"), "fp8")
