"""BERT inference without importing transformers: what an encode job loads, so that it starts in about a second.

Importing transformers' BERT costs a fresh process ~2 s on a quiet 2-core CPU (its model code pulls in
torch.distributed.tensor, torch._dynamo, sympy and scipy.optimize: ``python -X importtime``), more than the rest of
an encode job's start together; every encode job of the DAG paid it (``benchmarks/job_start.py``). For a plain BERT
checkpoint (``model_type: bert``, absolute positions, GELU) this module computes the same forward from the same
files: the ``save_pretrained`` weights under transformers' parameter names (read with ``safetensors``) and
``tokenizer.json`` (read with ``tokenizers``, the library under transformers' fast tokenizers). Eval only: no
dropout, no autograd use intended, no saving. Anything else (other architectures, relative positions, no
``tokenizer.json``) loads with transformers as before (``supports`` says which).

The forward, per layer l with hidden states H (B x T x d), padding mask M and h heads:
    A = softmax(Q K^T / sqrt(d / h) + M) V,  Q, K, V = H W_q, H W_k, H W_v   (scaled_dot_product_attention)
    H' = LN(H + A W_o),  H_{l+1} = LN(H' + GELU(H' W_1) W_2)
after embeddings LN(word + position + token type). Equal to transformers' ``BertModel`` in eval to float rounding
(``tests/test_light_bert.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"


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
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        summed = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
                  + self.position_embeddings(positions))
        return self.LayerNorm(summed)


class SelfAttention(nn.Module):
    def __init__(self, config: SimpleNamespace):
        super().__init__()
        self.heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape

        def split(x: torch.Tensor) -> torch.Tensor:  # B x T x d -> B x h x T x d/h
            return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(self.query(hidden)), split(self.key(hidden)),
                                                  split(self.value(hidden)), attn_mask=mask)
        return attended.transpose(1, 2).reshape(batch, length, width)


class DenseNorm(nn.Module):
    """LN(residual + x W): transformers' BertSelfOutput and BertOutput."""

    def __init__(self, width_in: int, config: SimpleNamespace):
        super().__init__()
        self.dense = nn.Linear(width_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


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
    """transformers' ``BertModel`` forward in eval (module docstring), under its parameter names."""

    def __init__(self, config: SimpleNamespace, pooler: bool):
        super().__init__()
        self.config = config
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


class Tokenizer:
    """The part of a transformers fast tokenizer that ``Encoder`` uses, over ``tokenizers`` directly."""

    model_input_names = ("input_ids", "token_type_ids", "attention_mask")

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as Backend

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


def load(path: Path | str, pooler: bool) -> tuple[BertModel, Tokenizer]:
    """The eval-mode model and the tokenizer of a directory that ``supports``; ``pooler``: build the pooler (the
    checkpoint must hold it)."""
    from safetensors.torch import load_file

    path = Path(path)
    values = json.loads((path / "config.json").read_text())
    values.setdefault("type_vocab_size", 2)
    values.setdefault("layer_norm_eps", 1e-12)
    model = BertModel(SimpleNamespace(**values), pooler)
    weights = {key.removeprefix("bert."): value for key, value in load_file(str(path / WEIGHTS)).items()}
    # Older checkpoints store the constant position/token-type id buffers; a pooler is loaded only when used.
    unused = ("embeddings.position_ids", "embeddings.token_type_ids") + (() if pooler else ("pooler.",))
    weights = {key: value for key, value in weights.items() if not key.startswith(unused)}
    model.load_state_dict(weights, strict=True)
    return model.eval(), Tokenizer(path)
