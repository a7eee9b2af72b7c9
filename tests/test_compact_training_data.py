"""Paper-scale training data: compact triples, teacher scores aligned with them, texts fetched when tokenized, a
bounded token cache; and the steps still see what the tuple-and-dict representation gave them, bit for bit."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from margin_retrieval.jobs.io import read_tsv, write_json, write_tsv
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training import tokens
from margin_retrieval.training.data import TrainingData, load_training_data
from margin_retrieval.training.tokens import TokenCache
from margin_retrieval.training.trainer import Trainer
from margin_retrieval.training.triples import Triples
from tests.test_training import config

WORDS = "cell protein gene virus heart blood brain sleep diet skin bone liver lung".split()


@pytest.fixture
def files(tmp_path):
    """MS MARCO-shaped files: numeric ids, 10 training queries of 4 triples each (repeated documents), teacher
    scores written with full float64 precision, 2 validation queries of 15 candidates."""
    rng = random.Random(1)
    docs = {str(100 + i): " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for i in range(40)}
    queries = {str(i): " ".join(rng.choice(WORDS) for _ in range(3)) for i in range(12)}
    rows = [(q, rng.choice(list(docs)), rng.choice(list(docs))) for q in list(queries)[:10] for _ in range(4)]
    write_tsv(tmp_path / "triples.tsv", ["qid", "pos_id", "neg_id"], rows)
    write_tsv(tmp_path / "teacher.tsv", ["qid", "pos_id", "neg_id", "teacher_pos", "teacher_neg"],
              [(*t, repr(rng.uniform(0, 10)), repr(rng.uniform(-3, 3))) for t in rows])
    order = list(queries)[:10]
    rng.shuffle(order)
    write_json(tmp_path / "splits.json", {"train_order": order, "validation": ["10", "11"]})
    write_tsv(tmp_path / "candidates.tsv", ["qid", "doc_id"], [(q, d) for q in ("10", "11") for d in list(docs)[:15]])
    qrels = {q: {t[1]: 1 for t in rows if t[0] == q} for q in order} | {"10": {"100": 1}, "11": {"103": 2}}
    return tmp_path, docs, queries, qrels


def load(files, fraction=1.0, lookups=None, teacher=True):
    path, docs, queries, qrels = files

    def lookup(ids):
        if lookups is not None:
            lookups.append(list(ids))
        return {i: docs[i] for i in ids}

    return load_training_data(path / "triples.tsv", path / "splits.json", path / "candidates.tsv", fraction, queries,
                              qrels, lookup, teacher_path=path / "teacher.tsv" if teacher else None)


def old_triples_and_teacher(path, fraction_queries):
    """The representation the loop used to read: tuples in file order and a dict of Python floats."""
    triples = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(path / "triples.tsv") if r["qid"] in
               fraction_queries]
    teacher = {(r["qid"], r["pos_id"], r["neg_id"]): (float(r["teacher_pos"]), float(r["teacher_neg"]))
               for r in read_tsv(path / "teacher.tsv")}
    return triples, teacher


def test_triples_are_int32_indices_that_give_back_the_tuples():
    rows = [("7", "100", "205"), ("7", "100", "311"), ("9", "311", "100")]
    triples = Triples.from_tuples(rows)
    assert list(triples) == rows and triples[2] == ("9", "311", "100") and len(triples) == 3
    assert triples.batch([2, 0]) == (["9", "7"], ["311", "100"], ["100", "205"])
    assert {triples.q.dtype, triples.p.dtype, triples.n.dtype} == {np.dtype(np.int32)}
    assert triples.query_ids.tolist() == ["7", "9"] and triples.doc_ids.tolist() == ["100", "205", "311"]


def test_the_fraction_and_its_teacher_scores_are_those_of_the_tuple_representation(files):
    path = files[0]
    for fraction in (1.0, 0.5):
        data = load(files, fraction)
        kept = set(json.loads((path / "splits.json").read_text())["train_order"][: 5 if fraction < 1 else 10])
        triples, teacher = old_triples_and_teacher(path, kept)
        assert list(data.triples) == triples and len(triples) == 4 * len(kept)
        every = range(len(triples))
        assert data.teacher_scores.dtype == np.float32
        # torch.tensor of the Python floats: what a step built from the dict
        assert torch.equal(torch.from_numpy(data.teacher(every)), torch.tensor([teacher[t] for t in triples]))


def test_teacher_scores_of_other_triples_are_named_errors(files):
    path = files[0]
    rows = read_tsv(path / "teacher.tsv")
    write_tsv(path / "teacher.tsv", list(rows[0]), [list(r.values()) for r in rows[1:] + rows[:1]])
    with pytest.raises(ValueError, match=r"teacher.tsv: line 2 scores .*triples.tsv:2 has"):
        load(files)
    write_tsv(path / "teacher.tsv", list(rows[0]), [list(r.values()) for r in rows[:-1]])
    with pytest.raises(ValueError, match="teacher.tsv: no row, where .*triples.tsv:41"):
        load(files)


def test_only_the_validation_candidates_are_read_up_front(tiny_bert, files, tmp_path):
    lookups = []
    data = load(files, lookups=lookups, teacher=False)
    candidates = sorted({d for docs in data.validation_candidates.values() for d in docs})
    assert lookups == [candidates]
    trainer = Trainer(tiny_bert, data, config(batch_size=4, max_steps=1), tmp_path / "work")
    trainer.fit()  # validations (before and after the step) re-rank the candidates: no lookup
    _, pos, neg = data.batch(trainer.batches(0))
    assert len(lookups) == 3  # the step's positives, then its negatives not already among them
    assert sorted(lookups[1] + lookups[2]) == sorted(set(pos + neg) - set(candidates))


def test_the_token_cache_is_bounded_and_keeps_the_validation_rows(tiny_bert):
    encoder, texts = Encoder.load(tiny_bert), {f"d{i}": " ".join(WORDS[i:i + 3]) for i in range(8)}
    tokenized = []

    def tokenize(batch, max_length):
        tokenized.extend(batch)
        return encoder.tokenize(batch, max_length)

    cache = TokenCache(tokenize, texts, 6, keep=["d7"], capacity=2)
    assert cache.rows(["d7", "d0", "d1", "d2", "d0"]) == encoder.tokenize([texts[d] for d in
                                                                          ("d7", "d0", "d1", "d2", "d0")], 6)
    assert len(cache) == 3  # d7 kept, the 2 most recent of d0, d1, d2 (d1 and d2): d0 evicted
    tokenized.clear()
    assert cache.rows(["d7", "d2", "d0"]) == encoder.tokenize([texts[d] for d in ("d7", "d2", "d0")], 6)
    assert tokenized == [texts["d0"]]


def test_steps_see_the_tokens_and_targets_of_the_tuple_representation(tiny_bert, files, tmp_path, monkeypatch):
    """The token ids and teacher targets of every step, from the loaded data with a cache that evicts within each
    epoch, equal those built the old way: triples as tuples, scores from a dict, texts tokenized from a dict. And a
    whole run logs the same losses and validations as one on data built from those tuples and dicts."""
    monkeypatch.setattr(tokens, "ROWS_KEPT", 4)
    path, docs, queries, _ = files
    data = load(files)
    settings = config(objective="margin_mse", batch_size=4, max_epochs=2, validate_every=5)
    trainer = Trainer(tiny_bert, data, settings, tmp_path / "compact")
    fed, targets = [], []
    embed, forward = trainer.encoder.embed_tokens, trainer.loss.forward

    def spy_embed(rows):
        if trainer.encoder.model.training:
            fed.append(rows)
        return embed(rows)

    def spy_loss(q, p, n, **kwargs):
        targets.append(torch.stack([kwargs["teacher_pos"], kwargs["teacher_neg"]], dim=1))
        return forward(q, p, n, **kwargs)

    monkeypatch.setattr(trainer.encoder, "embed_tokens", spy_embed)
    monkeypatch.setattr(trainer.loss, "forward", spy_loss)
    trainer.fit()
    triples, teacher = old_triples_and_teacher(path, set(queries))
    assert len(targets) == trainer.steps == 20 and len(fed) == 3 * trainer.steps
    for step in range(trainer.steps):
        batch = [triples[i] for i in trainer.batches(step)]
        tokenize = trainer.encoder.tokenize
        expected = [tokenize([queries[q] for q, _, _ in batch], settings.max_query_length),
                    tokenize([docs[p] for _, p, _ in batch], settings.max_doc_length),
                    tokenize([docs[n] for _, _, n in batch], settings.max_doc_length)]
        assert fed[3 * step : 3 * step + 3] == expected
        assert torch.equal(targets[step], torch.tensor([teacher[t] for t in batch]))
    monkeypatch.undo()
    tuples = TrainingData(triples, queries, docs, teacher, data.validation_candidates, data.validation_qrels)
    reference = Trainer(tiny_bert, tuples, settings, tmp_path / "tuples")
    reference.fit()
    assert without_seconds(trainer.log_path) == without_seconds(reference.log_path)


def without_seconds(log_path):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in log_path.read_text().splitlines()]
