"""One encoding for identical weights: ``models.identity.encodes_alike`` and ``retrieval.encoding.reuse_encoding``."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from margin_retrieval.jobs.io import load_embeddings, save_embeddings
from margin_retrieval.models.encoders import CONFIG_FILE, Encoder
from margin_retrieval.models.identity import encodes_alike
from margin_retrieval.retrieval.encoding import reuse_encoding
from tests.tiny_bert import make_tiny_bert


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("identity") / "base")


def exported(base: Path, directory: Path, change=None) -> Path:
    """``base`` loaded and saved as a training run exports its model (``Encoder.save``), after ``change(encoder)``."""
    encoder = Encoder.load(base)
    if change is not None:
        change(encoder)
    return encoder.save(directory)


def test_an_untrained_export_encodes_like_its_base_model(base, tmp_path):
    assert encodes_alike(exported(base, tmp_path / "kept"), base)


def test_one_changed_weight_makes_models_encode_differently(base, tmp_path):
    def nudge(encoder):
        with torch.no_grad():
            next(encoder.model.parameters()).view(-1)[0] += 1e-6

    assert not encodes_alike(exported(base, tmp_path / "trained", nudge), base)


def test_another_similarity_or_pooling_makes_models_encode_differently(base, tmp_path):
    for key, value in (("similarity", "dot"), ("pooling", "cls")):
        other = exported(base, tmp_path / key)
        settings = json.loads((other / CONFIG_FILE).read_text())
        (other / CONFIG_FILE).write_text(json.dumps({**settings, key: value}))
        assert not encodes_alike(other, base), key


def test_models_without_safetensors_are_never_called_alike(base, tmp_path):
    copy = Path(shutil.copytree(base, tmp_path / "copy"))
    assert encodes_alike(copy, base)
    (copy / "model.safetensors").rename(copy / "model.bin")
    assert not encodes_alike(copy, base)


def test_reuse_copies_the_reference_encodings_only_for_alike_models(base, tmp_path):
    references = [tmp_path / "zeroshot-1.npz", tmp_path / "zeroshot-2.npz"]
    save_embeddings(references[0], np.array(["d1", "d2"]), np.eye(2, dtype=np.float32))
    save_embeddings(references[1], np.array(["d3"]), np.ones((1, 2), dtype=np.float32))
    outs = [tmp_path / "kept-1.npz", tmp_path / "kept-2.npz"]
    assert reuse_encoding(exported(base, tmp_path / "kept"), base, references, outs)
    ids, embeddings = load_embeddings(outs[0])
    assert list(ids) == ["d1", "d2"] and np.array_equal(embeddings, np.eye(2))
    assert list(load_embeddings(outs[1])[0]) == ["d3"]
    assert outs[0].stat().st_ino != references[0].stat().st_ino  # its own file, with its own modification time

    def nudge(encoder):
        with torch.no_grad():
            next(encoder.model.parameters()).view(-1)[0] += 1.0

    other = tmp_path / "trained.npz"
    assert not reuse_encoding(exported(base, tmp_path / "trained", nudge), base, references[:1], [other])
    assert not other.exists()
