"""The training loop on a tiny random BERT: every objective trains, logs, validates, stops, resumes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.batching import batch_indices, total_steps
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import TrainingData
from margin_retrieval.training.tokens import TokenCache
from margin_retrieval.training.trainer import Trainer
from margin_retrieval.training.validation import validate
from tests.tiny_bert import make_tiny_bert

REPO = Path(__file__).resolve().parents[1]


def tiny_data(teacher: bool = False) -> TrainingData:
    words = ["cell", "protein", "gene", "virus", "heart", "blood", "brain", "sleep", "diet", "skin"]
    doc_text = {f"d{i}": f"{words[i]} {words[(i + 1) % 10]} {words[i]}" for i in range(10)}
    query_text = {f"q{i}": words[i] for i in range(10)}
    triples = [(f"q{i}", f"d{i}", f"d{(i + 5) % 10}") for i in range(8)]
    scores = {t: (0.9, 0.1) for t in triples} if teacher else None
    return TrainingData(
        triples=triples, query_text=query_text, doc_text=doc_text, teacher_scores=scores,
        validation_candidates={"q8": ["d8", "d9", "d0"], "q9": ["d9", "d1", "d2"]},
        validation_qrels={"q8": {"d8": 1}, "q9": {"d9": 2}},
    )


def config(**overrides) -> TrainConfig:
    base = dict(objective="adaptive", batch_size=3, max_epochs=2, validate_every=2, checkpoint_every=1,
                max_query_length=8, max_doc_length=12, learning_rate=1e-3, precision="fp32", patience=100)
    return TrainConfig(**{**base, **overrides})


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny")


@pytest.mark.parametrize(
    "objective, in_batch, tau",
    [("static", "false", 1), ("static", "true", 0.2), ("adaptive", "false", None), ("adaptive", "true", None),
     ("adaptive", "textbook", None), ("distributed", "false", None), ("margin_mse", "false", None),
     ("infonce", "false", None)],
)
def test_every_objective_trains_and_logs(base_model, tmp_path, objective, in_batch, tau):
    trainer = Trainer(base_model, tiny_data(teacher=objective == "margin_mse"),
                      config(objective=objective, in_batch=in_batch, tau=tau), tmp_path / "work")
    before = {k: v.clone() for k, v in trainer.encoder.model.state_dict().items()}
    summary = trainer.fit()
    assert any(not torch.equal(before[k], v) for k, v in trainer.encoder.model.state_dict().items())
    events = read_log(trainer.log_path)
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
    epoch = [i for step in range(3) for i in batch_indices(8, cfg, step)]
    assert sorted(epoch) == list(range(8))
    assert batch_indices(8, cfg, 4) == batch_indices(8, cfg, 4)
    assert [i for step in range(3, 6) for i in batch_indices(8, cfg, step)] != epoch


def test_early_stopping_keeps_the_best_checkpoint(base_model, tmp_path):
    trainer = Trainer(base_model, tiny_data(), config(validate_every=1, patience=1, learning_rate=0.05,
                                                      max_epochs=5), tmp_path / "work")
    summary = trainer.fit()
    events = read_log(trainer.log_path)
    if summary["stopped_reason"] == "early_stopping":
        assert events[-2]["event"] == "validation" and events[-2]["nDCG@10"] <= summary["best_value"]
    best = Encoder.load(trainer.best_dir)
    assert best is not None


def test_non_finite_loss_names_the_step(base_model, tmp_path):
    data = tiny_data(teacher=True)
    data.teacher_scores = {t: (float("nan"), 0.0) for t in data.triples}
    trainer = Trainer(base_model, data, config(objective="margin_mse"), tmp_path / "work")
    with pytest.raises(FloatingPointError, match="at step 1"):
        trainer.fit()


def test_gpu_resource_without_cuda_fails_at_once():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="gpu"):
        resolve_device("auto", gpu_requested=True)
    with pytest.raises(RuntimeError, match="training.device"):
        resolve_device("cuda", gpu_requested=False)
    assert resolve_device("auto", gpu_requested=False).type == "cpu"


def test_margin_mse_without_teacher_scores_is_an_error(base_model, tmp_path):
    with pytest.raises(ValueError, match="teacher scores"):
        Trainer(base_model, tiny_data(), config(objective="margin_mse"), tmp_path / "work")


RESUME_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tests.test_training import tiny_data, config
    from margin_retrieval.training.trainer import Trainer
    import margin_retrieval.training.trainer as training
    original = training.Trainer._train_step
    def slow_step(self):
        original(self)
        time.sleep(0.3)  # leaves time to kill the job between checkpoints
    training.Trainer._train_step = slow_step
    trainer = Trainer(Path(sys.argv[1]), tiny_data(), config(max_epochs=4), Path(sys.argv[2]))
    trainer.fit()
""")


def test_killed_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(base_model, tmp_path):
    reference = Trainer(base_model, tiny_data(), config(max_epochs=4), tmp_path / "reference")
    reference.fit()
    work = tmp_path / "work"
    process = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(base_model), str(work)], cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        log = work / "train_log.jsonl"
        if log.exists() and sum(1 for e in read_log(log) if e["event"] == "train" and e["step"] >= 4):
            process.kill()
            break
        time.sleep(0.05)
    process.wait()
    assert process.returncode != 0, "the job finished before it could be interrupted"
    resumed = Trainer(base_model, tiny_data(), config(max_epochs=4), work)
    resumed.fit()
    events = read_log(resumed.log_path)
    resume_event = next(e for e in events if e["event"] == "resumed")
    assert resume_event["from_step"] >= 3
    steps = [e["step"] for e in events if e["event"] == "train"]
    assert steps == sorted(set(steps)) == list(range(1, total_steps(8, resumed.config) + 1))
    for name, value in reference.encoder.model.state_dict().items():
        torch.testing.assert_close(resumed.encoder.model.state_dict()[name], value)


def test_token_cache_tokenizes_each_text_once_and_matches_the_tokenizer(base_model):
    encoder = Encoder.load(base_model)
    data = tiny_data()
    calls = []

    def counting_tokenize(texts, max_length):
        calls.append(list(texts))
        return encoder.tokenize(texts, max_length)

    cache = TokenCache(counting_tokenize, data.doc_text, 4)
    assert cache.rows(["d1", "d2", "d1"]) == encoder.tokenize([data.doc_text[d] for d in ("d1", "d2", "d1")], 4)
    assert cache.rows(["d2", "d3"]) == encoder.tokenize([data.doc_text["d2"], data.doc_text["d3"]], 4)
    assert calls == [[data.doc_text["d1"], data.doc_text["d2"]], [data.doc_text["d3"]]]


def test_validation_from_cached_tokens_equals_validation_from_texts(base_model):
    encoder, data, settings = Encoder.load(base_model), tiny_data(), config()
    queries = TokenCache(encoder.tokenize, data.query_text, settings.max_query_length)
    docs = TokenCache(encoder.tokenize, data.doc_text, settings.max_doc_length)
    cached = [validate(encoder, data, settings, queries, docs) for _ in range(2)]
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


def test_fused_adamw_steps_like_the_default_per_parameter_loop(base_model):
    from margin_retrieval.training.optim import build_optimizer

    fused_model, loop_model = Encoder.load(base_model).model, Encoder.load(base_model).model
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
