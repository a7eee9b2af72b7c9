"""BERT without importing transformers: what train and encode jobs load, so that they start seconds sooner.

Importing transformers' BERT costs a fresh process ~2 s on a quiet 2-core CPU (its model code pulls in
torch.distributed.tensor, torch._dynamo, sympy and scipy.optimize: ``python -X importtime``), more than the rest of
an encode job's start together; every train and encode job of the DAG paid it (``benchmarks/job_start.py``). For a
plain BERT checkpoint (``model_type: bert``, absolute positions, GELU) this module computes the same forward from
the same files: the ``save_pretrained`` weights under transformers' parameter names (read and written with
``safetensors``) and ``tokenizer.json`` (read with ``tokenizers``, the library under transformers' fast
tokenizers); ``save_pretrained`` writes the same files back, so a trained model loads in transformers and
sentence-transformers. Anything else (other architectures, relative positions, no ``tokenizer.json``) loads with
transformers as before (``supports`` says which).

The forward, per layer l with hidden states H (B x T x d), padding mask M and h heads:
    A = softmax(Q K^T / sqrt(d / h) + M) V,  Q, K, V = H W_q, H W_k, H W_v   (scaled_dot_product_attention)
    H' = LN(H + A W_o),  H_{l+1} = LN(H' + GELU(H' W_1) W_2)
after embeddings LN(word + position + token type). Dropout where transformers' BERT has it (embeddings, attention
probabilities, before each residual sum); the attention's is SDPA's own (torch's masks, as transformers' default
attention) unless ``use_fast_dropout`` swapped its ``dropout`` module, which then applies to eagerly computed
probabilities (as transformers' eager attention). Equal to transformers' ``BertModel`` in eval to float rounding,
and in training with fast dropout masks step for step (``tests/test_light_bert.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
TOKENIZER_FILES = (TOKENIZER, "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def supports(path: Path) -> bool:
    """Whether ``path`` is a BERT checkpoint this module computes exactly (else load it with transformers)."""
    config_file = Path(path) / "config.json"
    if not (config_file.is_file() and (Path(path) / WEIGHTS).is_file() and (Path(path) / TOKENIZER).is_file()):
        return False
    config = json.loads(config_file.read_text())
    return (config.get("model_type") == "bert" and config.get("hidden_act", "gelu") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and not config.get("is_decoder", False) and not config.get("add_cross_attention", False))


class Embeddings(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=getattr(config, "pad_token_id", None))
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        summed = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
                  + self.position_embeddings(positions))
        return self.dropout(self.LayerNorm(summed))


class SelfAttention(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape

        def split(x: torch.Tensor) -> torch.Tensor:  # B x T x d -> B x h x T x d/h
            return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        query, key, value = split(self.query(hidden)), split(self.key(hidden)), split(self.value(hidden))
        if not self.training or self.dropout.p == 0:
            attended = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        elif type(self.dropout) is nn.Dropout:  # torch's masks inside SDPA, as transformers' default attention
            attended = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=self.dropout.p)
        else:  # a swapped dropout module (FastDropout) on the probabilities, as transformers' eager attention
            scores = torch.matmul(query, key.transpose(2, 3)) * query.size(-1) ** -0.5
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            attended = torch.matmul(self.dropout(torch.softmax(scores, dim=-1)), value)
        return attended.transpose(1, 2).reshape(batch, length, width)


class DenseNorm(nn.Module):
    """LN(residual + x W): transformers' BertSelfOutput and BertOutput."""

    def __init__(self, width_in: int, config: SimpleNamespace):
        super().__init__()
        self.dense = nn.Linear(width_in, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.self = SelfAttention(config)
        self.output = DenseNorm(config.hidden_size, config)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, mask), hidden)


class Intermediate(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class Layer(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = DenseNorm(config.intermediate_size, config)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, mask)
        return self.output(self.intermediate(attended), attended)


class Layers(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Pooler(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    """transformers' ``BertModel`` forward (module docstring), under its parameter names; ``source`` is the
    directory it was loaded from, whose config is written back by ``save_pretrained``."""

    def __init__(self, config: SimpleNamespace, pooler: bool, source: Path | None):
        super().__init__()
        self.config = config
        self.source = None if source is None else Path(source)
        self.embeddings = Embeddings(config)
        self.encoder = Layers(config)
        self.pooler = Pooler(config) if pooler else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> SimpleNamespace:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        mask = attention_mask.bool()[:, None, None, :]  # B x 1 x 1 x T: every query attends to the real tokens
        for layer in self.encoder.layer:
            hidden = layer(hidden, mask)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return SimpleNamespace(last_hidden_state=hidden, pooler_output=pooled)

    def save_pretrained(self, directory: Path | str) -> None:
        """The weights under transformers' names and the source's config.json: what ``BertModel.save_pretrained``
        writes, loadable by transformers and sentence-transformers."""
        from safetensors.torch import save_file

        directory = Path(directory)
        weights = {key: value.detach().contiguous().cpu() for key, value in self.state_dict().items()}
        save_file(weights, str(directory / WEIGHTS), metadata={"format": "pt"})
        if self.source is None:
            raise ValueError("a BertModel built without a source directory has no config.json to save")
        if (self.source / "config.json").resolve() != (directory / "config.json").resolve():
            shutil.copyfile(self.source / "config.json", directory / "config.json")


class Tokenizer:
    """The part of a transformers fast tokenizer that ``Encoder`` uses, over ``tokenizers`` directly."""

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as Backend

        self.source = Path(path)
        self.backend = Backend.from_file(str(path / TOKENIZER))
        self.backend.no_padding()  # padding is Encoder.collate's; a saved fixed-length padding would undo it
        settings = json.loads((path / "tokenizer_config.json").read_text()) \
            if (path / "tokenizer_config.json").is_file() else {}
        pad_token = settings.get("pad_token") or "[PAD]"
        if isinstance(pad_token, dict):
            pad_token = pad_token["content"]
        self.pad_token_id = self.backend.token_to_id(pad_token)
        if self.pad_token_id is None:
            raise ValueError(f"{path / TOKENIZER} has no padding token {pad_token!r}")
        self.pad_token_type_id = int(settings.get("pad_token_type_id", 0))
        self.padding_side = settings.get("padding_side", "right")
        self.truncation_side = settings.get("truncation_side", "right")

    def __call__(self, texts: Sequence[str], truncation: bool = True, max_length: int | None = None) -> dict:
        if truncation and max_length is not None:
            self.backend.enable_truncation(max_length, direction=self.truncation_side)
        else:
            self.backend.no_truncation()
        return {"input_ids": [encoding.ids for encoding in self.backend.encode_batch(list(texts))]}

    def save_pretrained(self, directory: Path | str) -> None:
        """The source directory's tokenizer files, unchanged (training does not change the tokenizer)."""
        for name in TOKENIZER_FILES:
            source, target = self.source / name, Path(directory) / name
            if source.is_file() and source.resolve() != target.resolve():
                shutil.copyfile(source, target)


def load(path: Path | str) -> tuple[BertModel, Tokenizer]:
    """The model (in eval mode, with the pooler iff the checkpoint has one) and the tokenizer of a directory that
    ``supports``."""
    from safetensors.torch import load_file

    path = Path(path)
    values = json.loads((path / "config.json").read_text())
    for key, default in (("type_vocab_size", 2), ("layer_norm_eps", 1e-12), ("hidden_dropout_prob", 0.1),
                         ("attention_probs_dropout_prob", 0.1)):
        values.setdefault(key, default)
    weights = {key.removeprefix("bert."): value for key, value in load_file(str(path / WEIGHTS)).items()}
    # Older checkpoints store the constant position/token-type id buffers.
    weights = {key: value for key, value in weights.items()
               if key not in ("embeddings.position_ids", "embeddings.token_type_ids")}
    model = BertModel(SimpleNamespace(**values), pooler=any(key.startswith("pooler.") for key in weights),
                      source=path)
    model.load_state_dict(weights, strict=True)
    return model.eval(), Tokenizer(path)
