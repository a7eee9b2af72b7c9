"""light_bert: transformers' BERT (forward, training with dropout, saving) and fast tokenizer, without importing
transformers."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from margin_retrieval.models import light_bert
from margin_retrieval.models.dropout import use_fast_dropout
from margin_retrieval.models.encoders import Encoder
from tests.tiny_collection import FILLER, TOPICS

REPO = Path(__file__).resolve().parents[1]
# Texts of different lengths, so batches pad; one longer than the truncation below.
TEXTS = [" ".join(topic) for topic in TOPICS] + [" ".join(FILLER * 3), "what does query 7 do?", "document"]


def test_tokenizer_equals_transformers_fast_tokenizer(tiny_bert):
    reference = Encoder.load(tiny_bert, light=False)
    light = Encoder.load(tiny_bert)
    assert isinstance(light.tokenizer, light_bert.Tokenizer)
    for max_length in (8, 128):
        assert light.tokenize(TEXTS, max_length) == reference.tokenize(TEXTS, max_length)
    assert (light.tokenizer.pad_token_id, light.tokenizer.padding_side) == (reference.tokenizer.pad_token_id, "right")


def test_tokenizer_ignores_saved_fixed_padding(tiny_bert, tmp_path):
    """A tokenizer.json saved with fixed-length padding (as the converted student's is) still yields unpadded
    rows: padding is Encoder.collate's."""
    copy = Path(shutil.copytree(tiny_bert, tmp_path / "padded"))
    spec = json.loads((copy / "tokenizer.json").read_text())
    spec["padding"] = {"strategy": {"Fixed": 64}, "direction": "Right", "pad_to_multiple_of": None, "pad_id": 0,
                       "pad_type_id": 0, "pad_token": "[PAD]"}
    (copy / "tokenizer.json").write_text(json.dumps(spec))
    rows = light_bert.Tokenizer(copy)(["document"], max_length=16)["input_ids"]
    assert rows == Encoder.load(tiny_bert, light=False).tokenize(["document"], 16)


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_hidden_states_and_embeddings_equal_transformers(tiny_bert, pooling):
    reference = Encoder.load(tiny_bert, pooling=pooling, light=False)
    light = Encoder.load(tiny_bert, pooling=pooling)
    assert isinstance(light.model, light_bert.BertModel) and not isinstance(reference.model, light_bert.BertModel)
    batch = reference.collate(reference.tokenize(TEXTS, 16))
    assert batch["attention_mask"].min() == 0  # padded: the mask is exercised
    with torch.inference_mode():
        expected, got = reference.model.eval()(**batch), light.model(**batch)
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(got.last_hidden_state[mask], expected.last_hidden_state[mask], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.pooler_output if pooling == "pooler" else torch.zeros(1),
                               expected.pooler_output if pooling == "pooler" else torch.zeros(1), atol=1e-5, rtol=0)
    np.testing.assert_allclose(light.encode(TEXTS, 16, batch_size=3), reference.encode(TEXTS, 16, batch_size=3),
                               atol=1e-5)


def test_bf16_embeddings_close_to_transformers(tiny_bert):
    light = Encoder.load(tiny_bert).encode(TEXTS, 16, precision="bf16")
    reference = Encoder.load(tiny_bert, light=False).encode(TEXTS, 16, precision="bf16")
    assert np.min(np.sum(light * reference, axis=1)) > 0.999  # rows are unit vectors: cosine


def test_other_architectures_load_with_transformers(tiny_bert, tmp_path):
    copy = Path(shutil.copytree(tiny_bert, tmp_path / "relative"))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "position_embedding_type": "relative_key"}))
    assert light_bert.supports(tiny_bert) and not light_bert.supports(copy)
    assert not isinstance(Encoder.load(copy).model, light_bert.BertModel)
    (tiny_without_tokenizer := Path(shutil.copytree(tiny_bert, tmp_path / "slow")) / "tokenizer.json").unlink()
    assert not light_bert.supports(tiny_without_tokenizer.parent)


def test_saved_model_loads_in_transformers_with_equal_outputs(tiny_bert, tmp_path):
    light = Encoder.load(tiny_bert)
    with torch.no_grad():
        light.model.encoder.layer[0].output.dense.weight.mul_(-2.0)  # a trained model differs from its base
    light.save(tmp_path / "saved")
    assert {path.name for path in tiny_bert.iterdir()} <= {path.name for path in (tmp_path / "saved").iterdir()}
    reference = Encoder.load(tmp_path / "saved", light=False)
    np.testing.assert_allclose(reference.encode(TEXTS, 16), light.encode(TEXTS, 16), atol=1e-5)
    assert not np.allclose(Encoder.load(tiny_bert).encode(TEXTS, 16), light.encode(TEXTS, 16), atol=1e-3)


def _train(encoder: Encoder, steps: int) -> tuple[list[float], dict[str, torch.Tensor]]:
    """A few AdamW steps on a mean-pooled objective, dropout on (fast masks), from seed 0."""
    torch.manual_seed(0)
    use_fast_dropout(encoder.model.train())
    optimizer = torch.optim.AdamW(encoder.model.parameters(), lr=1e-2)
    rows = encoder.tokenize(TEXTS, 16)
    losses = []
    for _ in range(steps):
        embeddings = encoder.embed_tokens(rows)
        loss = (embeddings[:-1] * embeddings[1:]).sum()  # any function of every row, padded ones included
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, {key: value.detach() for key, value in encoder.model.state_dict().items()}


def test_training_with_fast_dropout_equals_transformers_step_for_step(tiny_bert):
    """Dropout where transformers has it, drawn in the same order: the same masks, so the same losses and weights."""
    light_losses, light_weights = _train(Encoder.load(tiny_bert), 4)
    losses, weights = _train(Encoder.load(tiny_bert, light=False), 4)
    assert light_losses == pytest.approx(losses, rel=1e-5)
    assert len(set(light_losses)) == 4  # it trained
    assert light_weights.keys() == weights.keys()
    for key in weights:
        torch.testing.assert_close(light_weights[key], weights[key], atol=1e-5, rtol=1e-4)


def test_torch_dropout_is_active_in_training(tiny_bert):
    encoder = Encoder.load(tiny_bert)
    encoder.model.train()
    rows = encoder.tokenize(TEXTS, 16)
    torch.manual_seed(0)
    first = encoder.embed_tokens(rows)
    second = encoder.embed_tokens(rows)
    assert not torch.allclose(first, second)
    encoder.model.eval()
    torch.testing.assert_close(encoder.embed_tokens(rows), encoder.embed_tokens(rows))


def test_encode_job_imports_do_not_load_transformers(tiny_bert):
    """What workflow_scripts/encode.py imports and runs, in a fresh process: transformers is never imported."""
    code = f"""
import sys
from margin_retrieval.data import collections
from margin_retrieval.retrieval.encoding import encode_docs, encode_queries
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.precision import resolve
Encoder.load({str(tiny_bert)!r}).encode(["a query"], 8, precision="fp32")  # the job's is resolved
print(sorted(name for name in sys.modules if name.split(".")[0] == "transformers"))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_training_run_needs_no_transformers(tiny_bert, tmp_path):
    """A whole training run (fast dropout masks, validation, export) in a process where importing transformers
    fails, as a train job of a plain BERT runs."""
    code = f"""
import sys
from tests.test_training import config, tiny_data  # the test helpers themselves build models with transformers
for name in [name for name in sys.modules if name.split(".")[0] == "transformers"]:
    del sys.modules[name]
sys.modules["transformers"] = None  # from here on, any import of it raises
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.training.trainer import Trainer
trainer = Trainer({str(tiny_bert)!r}, tiny_data(), config(dropout_masks="fast"), {str(tmp_path / "work")!r})
trainer.fit()
trainer.export({str(tmp_path / "model")!r}, {str(tmp_path / "log.jsonl")!r})
print(Encoder.load({str(tmp_path / "model")!r}).encode(["cell"], 8, 2, "fp32").shape)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(1, 32)"
