"""The training loop on a tiny random BERT: every objective trains, logs, validates, stops, resumes."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from margin_retrieval.jobs.errors import UserError
from margin_retrieval.models.device import cpu_description, resolve_device
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.batching import RandomBatches, total_steps
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import TrainingData
from margin_retrieval.training.student import validation_condition
from margin_retrieval.training.tokens import TokenCache
from margin_retrieval.training.trainer import Trainer
from margin_retrieval.training.untrained import validate_untrained
from margin_retrieval.training.validation import validate
from tests.configs import settings

REPO = Path(__file__).resolve().parents[1]


def tiny_data(teacher: bool = False, clustered: bool = False) -> TrainingData:
    words = ["cell", "protein", "gene", "virus", "heart", "blood", "brain", "sleep", "diet", "skin"]
    doc_text = {f"d{i}": f"{words[i]} {words[(i + 1) % 10]} {words[i]}" for i in range(10)}
    query_text = {f"q{i}": words[i] for i in range(10)}
    triples = [(f"q{i}", f"d{i}", f"d{(i + 5) % 10}") for i in range(8)]
    scores = {t: (0.9, 0.1) for t in triples} if teacher else None
    return TrainingData(
        triples=triples, query_text=query_text, doc_text=doc_text, teacher_scores=scores,
        validation_candidates={"q8": ["d8", "d9", "d0"], "q9": ["d9", "d1", "d2"]},
        validation_qrels={"q8": {"d8": 1}, "q9": {"d9": 2}},
        clusters=[0, 0, 1, 1, 0, 0, 1, 1] if clustered else None,  # two clusters of 4 triples: full and packed batches
    )


RUN = {"objective": "adaptive", "in_batch": "false", "tau": None, "batching": "random", "seed": 0, "lr": 1e-3}


def config(**overrides) -> TrainConfig:
    """The schema's training defaults with small sizes for the tiny model; ``overrides`` replace any field."""
    training = dict(batch_size=3, max_epochs=2, validate_every=2, checkpoint_every=1, max_query_length=8,
                    max_doc_length=12, precision="fp32", patience=100)
    run_keys = {key: overrides.pop(key) for key in list(overrides) if key in RUN}
    base = TrainConfig.from_config(settings(training=training).training, RUN | run_keys)
    return dataclasses.replace(base, **overrides)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "objective, in_batch, tau",
    [("static", "false", 1), ("static", "true", 0.2), ("adaptive", "false", None), ("adaptive", "true", None),
     ("adaptive", "textbook", None), ("distributed", "false", None), ("margin_mse", "false", None),
     ("infonce", "false", None)],
)
def test_every_objective_trains_and_logs(tiny_bert, tmp_path, objective, in_batch, tau):
    trainer = Trainer(tiny_bert, tiny_data(teacher=objective == "margin_mse"),
                      config(objective=objective, in_batch=in_batch, tau=tau), tmp_path / "work")
    before = {k: v.clone() for k, v in trainer.encoder.model.state_dict().items()}
    summary = trainer.fit()
    assert any(not torch.equal(before[k], v) for k, v in trainer.encoder.model.state_dict().items())
    events = read_log(trainer.log_path)
    assert events[0]["event"] == "start" and events[0]["optimizer"] == "AdamW"  # the class that ran
    assert events[0]["cpu"] == cpu_description()  # so that CPU seconds are compared on one CPU kind only
    train_events = [e for e in events if e["event"] == "train"]
    assert [e["step"] for e in train_events] == list(range(1, total_steps(8, trainer.config) + 1))
    assert [e["triples_seen"] for e in train_events][:3] == [3, 6, 8]
    assert all(math.isfinite(e["loss"]) and e["seconds"] >= 0 for e in train_events)
    has_targets = objective in ("static", "adaptive", "distributed")
    assert all((e["target_mean"] is not None) == has_targets for e in train_events)
    if objective == "static":  # the constant target is logged as such
        assert all(e["target_min"] == e["target_max"] == pytest.approx(float(tau)) for e in train_events)
    validations = [e for e in events if e["event"] == "validation"]
    assert validations[0]["step"] == 0 and validations[-1]["step"] == 6
    assert summary["best_value"] == max(v["nDCG@10"] for v in validations)
    trainer.export(tmp_path / "model", tmp_path / "log.jsonl")
    assert Encoder.load(tmp_path / "model").encode(["cell"], 8, 2, "fp32").shape == (1, 32)
    assert not (tmp_path / "work").exists()


def test_batches_cover_each_epoch_once_and_are_reproducible():
    cfg = config(batch_size=3)
    epoch = [i for step in range(3) for i in RandomBatches(8, cfg)(step)]
    assert sorted(epoch) == list(range(8))
    assert RandomBatches(8, cfg)(4) == RandomBatches(8, cfg)(4)
    assert [i for step in range(3, 6) for i in RandomBatches(8, cfg)(step)] != epoch


def test_early_stopping_keeps_the_best_checkpoint(tiny_bert, tmp_path):
    data = tiny_data()
    trainer = Trainer(tiny_bert, data, config(validate_every=1, patience=2, learning_rate=0.05, max_epochs=5),
                      tmp_path / "work")
    summary = trainer.fit()
    events = read_log(trainer.log_path)
    assert summary["stopped_reason"] == "early_stopping"
    validations = [e for e in events if e["event"] == "validation"]
    assert events[-1]["event"] == "end" and events[-2]["event"] == "validation"
    assert validations[-1]["step"] < total_steps(8, trainer.config)  # stopped before the last step
    best = max(validations, key=lambda e: e["nDCG@10"])  # the first of equal values: later ones do not improve
    assert (summary["best_step"], summary["best_value"]) == (best["step"], best["nDCG@10"])
    # stopped after exactly `patience` validations without improvement
    assert [e["step"] for e in validations if e["step"] > best["step"]] == [v["step"] for v in validations[-2:]]
    assert all(v["nDCG@10"] <= best["nDCG@10"] for v in validations[-2:])
    # the kept model is the best one, not the last: it reproduces the best validation value
    trainer.export(tmp_path / "model", tmp_path / "log.jsonl")
    kept = Encoder.load(tmp_path / "model")
    assert validate(kept, data, trainer.config).mean == pytest.approx(summary["best_value"], abs=1e-6)
    assert any(not torch.equal(kept.model.state_dict()[k], v.cpu())
               for k, v in trainer.encoder.model.state_dict().items())


def test_non_finite_loss_names_the_step(tiny_bert, tmp_path):
    data = tiny_data(teacher=True)
    data.teacher_scores[:, 0] = float("nan")
    trainer = Trainer(tiny_bert, data, config(objective="margin_mse"), tmp_path / "work")
    with pytest.raises(FloatingPointError, match="at step 1"):
        trainer.fit()


def test_a_non_finite_loss_is_an_error_only_without_loss_scaling():
    from margin_retrieval.training.scaling import check_loss, grad_scaler

    nan = torch.tensor(float("nan"))
    for precision in ("fp32", "bf16", "fp16"):  # on the CPU no precision scales the loss
        with pytest.raises(FloatingPointError, match="non-finite loss nan at step 4"):
            check_loss(nan, 4, grad_scaler(torch.device("cpu"), precision))
    check_loss(torch.tensor(1.0), 4, grad_scaler(torch.device("cpu"), "fp32"))
    assert not grad_scaler(torch.device("cpu"), "fp16").is_enabled()
    check_loss(nan, 4, torch.amp.GradScaler("cpu", enabled=True))  # a scaler skips the step instead


def test_scaled_step_reports_the_step_the_scaler_skipped():
    from margin_retrieval.training.scaling import scaled_step

    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    before = model.weight.detach().clone()
    assert scaled_step(model(torch.ones(2, 3)).sum() * float("nan"), optimizer, scaler)
    assert torch.equal(model.weight, before)  # skipped: the NaN gradients never reached the weights
    assert not scaled_step(model(torch.ones(2, 3)).sum(), optimizer, scaler)
    assert not torch.equal(model.weight, before)


def test_fp16_loss_scaling_skips_and_counts_non_finite_steps(tiny_bert, tmp_path, monkeypatch):
    """The GradScaler is CUDA-only in training; a CPU one exercises the same skip-and-count path."""
    import margin_retrieval.training.trainer as training

    monkeypatch.setattr(training, "grad_scaler", lambda device, precision: torch.amp.GradScaler("cpu", enabled=True))
    data = tiny_data(teacher=True)
    poisoned = data.triples[5]
    data.teacher_scores[5] = (float("nan"), 0.0)  # every batch holding this triple has a NaN loss
    trainer = Trainer(tiny_bert, data, config(objective="margin_mse"), tmp_path / "work")
    summary = trainer.fit()
    expected = sum(poisoned in [data.triples[i] for i in trainer.batches(step)] for step in range(trainer.steps))
    events = read_log(trainer.log_path)
    train_events = [e for e in events if e["event"] == "train"]
    assert expected == 2 and len(train_events) == trainer.steps  # one batch per epoch; the run went on
    assert sum(not math.isfinite(e["loss"]) for e in train_events) == expected
    assert train_events[-1]["skipped_steps"] == summary["skipped_steps"] == events[-1]["skipped_steps"] == expected
    assert all(math.isfinite(v.float().sum()) for v in trainer.encoder.model.state_dict().values())


def test_gpu_resource_without_cuda_fails_at_once():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="gpu"):
        resolve_device("auto", gpu_requested=True)
    with pytest.raises(RuntimeError, match="training.device") as error:
        resolve_device("cuda", gpu_requested=False)
    assert isinstance(error.value, UserError)  # a job logs it as one line, without a traceback
    assert resolve_device("auto", gpu_requested=False).type == "cpu"


def test_clustered_batching_without_clusters_is_an_error(tiny_bert, tmp_path):
    with pytest.raises(ValueError, match="cluster id per training triple"):
        Trainer(tiny_bert, tiny_data(), config(batching="clustered"), tmp_path / "work")


def test_clustered_run_trains_on_single_cluster_batches(tiny_bert, tmp_path):
    data = tiny_data(clustered=True)
    trainer = Trainer(tiny_bert, data, config(batching="clustered"), tmp_path / "work")
    batches = [trainer.batches(step) for step in range(trainer.steps)]
    full = [batch for batch in batches if len(batch) == 3]
    assert all(len({data.clusters[i] for i in batch}) == 1 for batch in full)
    trainer.fit()
    steps = [e["step"] for e in read_log(trainer.log_path) if e["event"] == "train"]
    assert steps == list(range(1, trainer.steps + 1))


def test_margin_mse_without_teacher_scores_is_an_error(tiny_bert, tmp_path):
    with pytest.raises(ValueError, match="teacher scores"):
        Trainer(tiny_bert, tiny_data(), config(objective="margin_mse"), tmp_path / "work")


RESUME_CONFIG = dict(max_epochs=4, checkpoint_every=3, validate_every=2)  # 12 steps, 6 validations, 4 checkpoints
INTERRUPT_CONFIG = dict(max_epochs=4, checkpoint_every=100, validate_every=2)  # checkpoints: step 0 and the signal's
RESUME_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import tests.test_training as settings
    from tests.test_training import tiny_data, config
    from margin_retrieval.training.trainer import Trainer
    import margin_retrieval.training.trainer as training
    original = training.Trainer._train_step
    def slow_step(self):
        original(self)
        time.sleep(0.3)  # leaves time to kill the job at the chosen step
    training.Trainer._train_step = slow_step
    import torch
    torch.set_num_threads(1)  # as the test process (one_thread): float sums depend on the thread count
    batching = sys.argv[3]
    trainer = Trainer(Path(sys.argv[1]), tiny_data(clustered=batching == "clustered"),
                      config(batching=batching, **getattr(settings, sys.argv[4])), Path(sys.argv[2]))
    trainer.fit()
""")


@pytest.fixture()
def one_thread():
    """Bit-identical comparisons need one thread count in every process (other tests, e.g. faiss' OpenMP setting,
    may have changed this process's)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def outcome(trainer: Trainer, summary: dict, out: Path) -> dict:
    """What a finished run leaves: its summary, validation curve, losses, and the exported model's weights."""
    trainer.export(out / "model", out / "train_log.jsonl")
    events = read_log(out / "train_log.jsonl")
    return {"summary": summary,
            "validations": [(e["step"], e["nDCG@10"]) for e in events if e["event"] == "validation"],
            "losses": [(e["step"], e["loss"]) for e in events if e["event"] == "train"],
            "model": Encoder.load(out / "model").model.state_dict(),
            "final": {k: v.clone() for k, v in trainer.encoder.model.state_dict().items()}}


def assert_same_outcome(got: dict, expected: dict, context: str) -> None:
    for key in ("summary", "validations", "losses"):
        assert got[key] == expected[key], f"{context}: {key} differ"
    for weights in ("model", "final"):
        assert got[weights].keys() == expected[weights].keys()
        for name, value in expected[weights].items():
            assert torch.equal(got[weights][name], value), f"{context}: {weights} weight {name} differs"


def wait_for_step(process: subprocess.Popen, log: Path, step: int) -> int:
    """Wait until the job's log shows ``step`` (or the job ended); returns the last step logged."""
    deadline, seen = time.time() + 600, 0  # generous: a loaded CI machine starts the job slowly
    while time.time() < deadline and process.poll() is None and seen < step:
        try:
            seen = max([e["step"] for e in read_log(log) if e["event"] == "train"], default=0) if log.exists() else 0
        except json.JSONDecodeError:  # a line being written right now
            pass
        time.sleep(0.05)
    return seen


def test_same_seed_gives_identical_results_and_another_seed_does_not(tiny_bert, tmp_path, one_thread):
    results = []
    for run, seed in enumerate((0, 0, 1)):
        trainer = Trainer(tiny_bert, tiny_data(), config(seed=seed, **RESUME_CONFIG), tmp_path / f"work{run}")
        results.append(outcome(trainer, trainer.fit(), tmp_path / f"out{run}"))
    assert_same_outcome(results[1], results[0], "same seed")
    assert results[2]["losses"] != results[0]["losses"]  # the seed matters (dropout, data order): not vacuous


@pytest.mark.parametrize("batching", ["random", "clustered"])
def test_killed_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(tiny_bert, tmp_path,
                                                                                  one_thread, batching):
    data = lambda: tiny_data(clustered=batching == "clustered")  # noqa: E731
    reference_trainer = Trainer(tiny_bert, data(), config(batching=batching, **RESUME_CONFIG),
                                tmp_path / "reference")
    reference = outcome(reference_trainer, reference_trainer.fit(), tmp_path / "reference_out")
    steps = total_steps(8, reference_trainer.config)
    kill_at = random.randint(2, steps - 2)  # a random step, reported on failure
    work = tmp_path / "work"
    process = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(tiny_bert), str(work), batching,
                                "RESUME_CONFIG"], cwd=REPO)
    seen = wait_for_step(process, work / "train_log.jsonl", kill_at)
    process.kill()  # SIGKILL, as kill -9
    process.wait()
    assert process.returncode == -9, f"the job was not killed at step {kill_at} (exit {process.returncode})"
    resumed_trainer = Trainer(tiny_bert, data(), config(batching=batching, **RESUME_CONFIG), work)
    # the batches are a pure function of seed, epoch and step: the resumed job plans the same ones
    assert ([resumed_trainer.batches(step) for step in range(steps)]
            == [reference_trainer.batches(step) for step in range(steps)])
    resumed = outcome(resumed_trainer, resumed_trainer.fit(), tmp_path / "resumed_out")
    events = read_log(tmp_path / "resumed_out" / "train_log.jsonl")
    resume_event = next(e for e in events if e["event"] == "resumed")
    checkpoint_steps = set(range(0, steps, RESUME_CONFIG["checkpoint_every"]))
    # the last checkpoint before the kill (the job may have logged one more step while being killed)
    assert resume_event["from_step"] in checkpoint_steps and resume_event["from_step"] <= seen + 1
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(1, steps + 1))
    assert_same_outcome(resumed, reference, f"killed at step {kill_at}")


@pytest.mark.parametrize("stop_signal", [signal.SIGUSR1, signal.SIGTERM], ids=lambda s: s.name)
def test_stop_signal_checkpoints_the_current_step_and_the_resumed_run_matches_an_uninterrupted_one(
        tiny_bert, tmp_path, one_thread, stop_signal):
    reference_trainer = Trainer(tiny_bert, tiny_data(), config(**INTERRUPT_CONFIG), tmp_path / "reference")
    reference = outcome(reference_trainer, reference_trainer.fit(), tmp_path / "reference_out")
    steps = total_steps(8, reference_trainer.config)
    signal_at = random.randint(2, steps - 3)  # a random step, reported on failure; the job ends before its last
    work = tmp_path / "work"
    process = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(tiny_bert), str(work), "random",
                                "INTERRUPT_CONFIG"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    wait_for_step(process, work / "train_log.jsonl", signal_at)
    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, f"signal at step {signal_at}: exit {process.returncode}\n{stderr[-2000:]}"
    assert "TrainingInterrupted" in stderr
    interrupted = [e for e in read_log(work / "train_log.jsonl") if e["event"] == "interrupted"]
    assert [e["signal"] for e in interrupted] == [stop_signal.name]
    stopped_at = interrupted[0]["step"]
    assert signal_at <= stopped_at < steps
    assert torch.load(work / "checkpoint.pt", weights_only=False)["state"]["step"] == stopped_at  # not step 0's
    handlers = signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM)
    resumed_trainer = Trainer(tiny_bert, tiny_data(), config(**INTERRUPT_CONFIG), work)
    resumed = outcome(resumed_trainer, resumed_trainer.fit(), tmp_path / "resumed_out")
    assert (signal.getsignal(signal.SIGUSR1), signal.getsignal(signal.SIGTERM)) == handlers  # restored after fit
    events = read_log(tmp_path / "resumed_out" / "train_log.jsonl")
    assert next(e for e in events if e["event"] == "resumed")["from_step"] == stopped_at
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(1, steps + 1))
    assert_same_outcome(resumed, reference, f"{stop_signal.name} at step {stopped_at}")


GPU_JOB_SCRIPT = textwrap.dedent("""
    import runpy, sys, types
    from margin_retrieval.data import collections
    import margin_retrieval.jobs.io as io_module

    def forbidden(*args, **kwargs):
        raise AssertionError("data was read before the device check")

    collections.load = collections.configure_home = io_module.read_tsv = forbidden
    params = types.SimpleNamespace(training=types.SimpleNamespace(device="auto"), scores_file=None, home=None, spec={}, name="train")
    snakemake = types.SimpleNamespace(log=[sys.argv[2]], threads=1, params=params, resources={"gpu": 1},
                                      input=types.SimpleNamespace(triples="triples.tsv", model="model"),
                                      wildcards={}, output=["out"])
    runpy.run_path(sys.argv[1], init_globals={"snakemake": snakemake})
""")


@pytest.mark.parametrize("script", ["train.py", "score_teacher.py", "encode.py"])
def test_gpu_job_without_cuda_fails_before_reading_data(tmp_path, script):
    log = tmp_path / "job.log"
    result = subprocess.run([sys.executable, "-c", GPU_JOB_SCRIPT, str(REPO / "workflow_scripts" / script), str(log)],
                            cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)})
    assert result.returncode != 0
    message = log.read_text()
    assert "given the 'gpu' resource but torch sees no CUDA device" in message, message
    assert "data was read before" not in message


@pytest.mark.parametrize("objective, similarity, expected", [("margin_mse", "dot", "dot"),
                                                             ("margin_mse", "cosine", "cosine"),
                                                             ("adaptive", "dot", "cosine")])
def test_the_trained_similarity_is_recorded_and_used_for_scoring(tiny_bert, tmp_path, objective, similarity,
                                                                 expected):
    """Dot-product Margin-MSE gives a dot model: recorded in margin_retrieval.json, without sentence-transformers'
    Normalize module, validated and encoded on raw embeddings; every other model stays cosine (normalised)."""
    trainer = Trainer(tiny_bert, tiny_data(teacher=True),
                      config(objective=objective, margin_mse_similarity=similarity, max_epochs=1), tmp_path / "work")
    norms = []
    encode_tokens = trainer.encoder.encode_tokens

    def spy(*args, **kwargs):
        rows = encode_tokens(*args, **kwargs)
        norms.extend(np.linalg.norm(rows, axis=1))
        return rows

    trainer.encoder.encode_tokens = spy  # what validation scores with (from the job's cached tokens)
    trainer.fit()
    trainer.export(tmp_path / "model", tmp_path / "log.jsonl")
    assert json.loads((tmp_path / "model/margin_retrieval.json").read_text())["similarity"] == expected
    modules = [m["type"].rsplit(".", 1)[1] for m in json.loads((tmp_path / "model/modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"][: 3 if expected == "cosine" else 2]
    exported = Encoder.load(tmp_path / "model")
    assert exported.similarity == expected
    rows = exported.encode(["cell protein", "heart"], 8, 2, "fp32")  # what retrieval indexes
    unit = lambda values: np.allclose(values, 1.0, atol=1e-5)  # noqa: E731
    assert unit(np.linalg.norm(rows, axis=1)) == (expected == "cosine")
    assert norms and unit(norms) == (expected == "cosine")
    np.testing.assert_array_equal(rows, exported.encode(["cell protein", "heart"], 8, 2, "fp32",
                                                        normalize=expected == "cosine"))


def test_token_cache_tokenizes_each_text_once_and_matches_the_tokenizer(tiny_bert):
    encoder = Encoder.load(tiny_bert)
    data = tiny_data()
    calls = []

    def counting_tokenize(texts, max_length):
        calls.append(list(texts))
        return encoder.tokenize(texts, max_length)

    cache = TokenCache(counting_tokenize, data.doc_text, 4)
    assert cache.rows(["d1", "d2", "d1"]) == encoder.tokenize([data.doc_text[d] for d in ("d1", "d2", "d1")], 4)
    assert cache.rows(["d2", "d3"]) == encoder.tokenize([data.doc_text["d2"], data.doc_text["d3"]], 4)
    assert calls == [[data.doc_text["d1"], data.doc_text["d2"]], [data.doc_text["d3"]]]


def test_validation_from_cached_tokens_equals_validation_from_texts(tiny_bert):
    encoder, data, settings = Encoder.load(tiny_bert), tiny_data(), config()
    queries = TokenCache(encoder.tokenize, data.query_text, settings.max_query_length)
    docs = TokenCache(encoder.tokenize, data.doc_text, settings.max_doc_length)
    cached = [validate(encoder, data, settings, queries, docs).mean for _ in range(2)]
    # The reference: encode the texts themselves, as validation did before it cached tokens.
    import ir_measures

    qids = sorted(data.validation_candidates)
    doc_ids = sorted({d for docs in data.validation_candidates.values() for d in docs})
    q = encoder.encode([data.query_text[i] for i in qids], 8, 64, "fp32")
    d = dict(zip(doc_ids, encoder.encode([data.doc_text[i] for i in doc_ids], 12, 64, "fp32")))
    run = {qid: {doc: float(d[doc] @ q[i]) for doc in data.validation_candidates[qid]} for i, qid in enumerate(qids)}
    measure = ir_measures.nDCG @ 10
    expected = ir_measures.calc_aggregate([measure], data.validation_qrels, run)[measure]
    assert cached == [expected, expected]


def test_fused_adamw_steps_like_the_default_per_parameter_loop(tiny_bert):
    from margin_retrieval.training.optim import build_optimizer

    fused_model, loop_model = Encoder.load(tiny_bert).model, Encoder.load(tiny_bert).model
    fused, _ = build_optimizer(fused_model, config(), torch.device("cpu"))
    assert fused.defaults["fused"]
    same_groups, _ = build_optimizer(loop_model, config(), torch.device("cpu"))
    loop = torch.optim.AdamW([{"params": g["params"], "weight_decay": g["weight_decay"]}
                              for g in same_groups.param_groups], lr=config().learning_rate, foreach=False)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for a, b in zip(fused_model.parameters(), loop_model.parameters()):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        fused.step()
        loop.step()
    for (name, a), b in zip(fused_model.named_parameters(), loop_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_adamw8bit_on_cuda_needs_bitsandbytes_and_names_it(monkeypatch):
    from margin_retrieval.workflow.config import Optimizer
    from margin_retrieval.training.optim import optimizer_class

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # not installed: importing it raises ImportError
    with pytest.raises(ImportError, match=r"adamw8bit needs the package bitsandbytes .* pip install bitsandbytes=="):
        optimizer_class(Optimizer.ADAMW8BIT, torch.device("cuda"))
    adamw8bit = type("AdamW8bit", (), {})
    monkeypatch.setitem(sys.modules, "bitsandbytes", types.SimpleNamespace(optim=types.SimpleNamespace(
        AdamW8bit=adamw8bit)))
    assert optimizer_class(Optimizer.ADAMW8BIT, torch.device("cuda")) == (adamw8bit, {})
    assert optimizer_class(Optimizer.ADAMW, torch.device("cuda")) == (torch.optim.AdamW, {"fused": True})


def test_adamw8bit_on_the_cpu_trains_with_adamw_and_warns(tiny_bert, caplog):
    from margin_retrieval.training.optim import build_optimizer

    model = Encoder.load(tiny_bert).model
    with caplog.at_level(logging.WARNING, logger="margin_retrieval.training.optim"):
        optimizer, _ = build_optimizer(model, config(optimizer="adamw8bit"), torch.device("cpu"))
    assert type(optimizer) is torch.optim.AdamW
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "needs CUDA" in caplog.records[0].message


def test_step_zero_from_the_untrained_validation_file_logs_what_validating_would(tiny_bert, tmp_path):
    cfg, device = config(), torch.device("cpu")
    saved = tmp_path / "untrained.json"
    validate_untrained(tiny_bert, tiny_data(), cfg, device, saved)
    fresh = Trainer(tiny_bert, tiny_data(), cfg, tmp_path / "fresh")
    fresh.fit()
    reused = Trainer(tiny_bert, tiny_data(), cfg, tmp_path / "reused", untrained=saved)
    reused.fit()
    fresh_log, reused_log = read_log(fresh.log_path), read_log(reused.log_path)
    step0 = [[e for e in log if e["event"] == "validation"][0] for log in (fresh_log, reused_log)]
    assert step0[0]["step"] == step0[1]["step"] == 0
    assert step0[1]["nDCG@10"] == pytest.approx(step0[0]["nDCG@10"], abs=1e-6)
    assert step0[1]["per_query"] == pytest.approx(step0[0]["per_query"], abs=1e-6)
    # skipping the step-0 validation leaves the run itself unchanged
    losses = [[e["loss"] for e in log if e["event"] == "train"] for log in (fresh_log, reused_log)]
    assert losses[1] == losses[0]
    assert json.loads(saved.read_text())["condition"] == validation_condition(cfg, device)


def test_an_untrained_validation_from_another_condition_is_recomputed(tiny_bert, tmp_path):
    saved = tmp_path / "untrained.json"
    validate_untrained(tiny_bert, tiny_data(), config(), torch.device("cpu"), saved)
    record = json.loads(saved.read_text())
    record["condition"]["precision"], record["nDCG@10"] = "bf16", -1.0  # a value no validation can give
    saved.write_text(json.dumps(record))
    trainer = Trainer(tiny_bert, tiny_data(), config(), tmp_path / "work", untrained=saved)
    trainer.fit()
    step0 = [e for e in read_log(trainer.log_path) if e["event"] == "validation"][0]
    assert step0["step"] == 0 and 0 <= step0["nDCG@10"] <= 1
