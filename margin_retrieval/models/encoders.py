"""The bi-encoder: a Hugging Face transformer, its tokenizer and a pooling setting, stored together in one directory.

A model directory holds the ``save_pretrained`` files of the model and the tokenizer, ``margin_retrieval.json``
(``{"pooling": "mean" | "cls" | "pooler", "similarity": "cosine" | "dot"}``) and, for mean/cls pooling, the
sentence-transformers files (``modules.json``, ``1_Pooling/config.json``, ``sentence_bert_config.json``; a
``Normalize`` module only for cosine), so the same directory also loads with ``SentenceTransformer(path)`` elsewhere.
A plain BERT directory is computed by ``light_bert`` (the same model, without transformers' import cost), any other
architecture by transformers.

``similarity`` is the score the model was trained for: ``cosine`` (every margin objective, InfoNCE, Margin-MSE with
cosine) or ``dot`` (the original Margin-MSE, against unbounded teacher scores). A directory without it is cosine.

``embed`` is the training forward (autograd on, raw pooled vectors); ``encode`` is inference (no autograd; rows
L2-normalised for a cosine model, so that cosine similarity is the inner product that faiss computes, raw for dot).
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from margin_retrieval.models import light_bert
from margin_retrieval.models.precision import autocast_context
from margin_retrieval.jobs.progress import Progress

log = logging.getLogger(__name__)

CONFIG_FILE = "margin_retrieval.json"
POOLINGS = ("mean", "cls", "pooler")
SIMILARITIES = ("cosine", "dot")


def longest_first(texts: Sequence[str]) -> list[int]:
    """Text positions by character length, longest first: batches pad little and an out-of-memory shows early."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)


def _check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
    return pooling


def _pooling_from_sentence_transformers(path: Path) -> str | None:
    """The pooling of a plain sentence-transformers directory (``1_Pooling/config.json``), if it has one we support."""
    config_path = path / "1_Pooling" / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    modes = [mode for mode in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                               "lasttoken") if config.get(f"pooling_mode_{mode}")]
    if modes == ["mean_tokens"]:
        return "mean"
    if modes == ["cls_token"]:
        return "cls"
    return None


def _checkpoint_has_pooler(path: Path) -> bool | None:
    """Whether the safetensors checkpoint in ``path`` holds pooler weights; None when it cannot be told cheaply."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        keys = json.loads(index.read_text())["weight_map"]
    elif (path / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), framework="pt") as handle:
            keys = list(handle.keys())
    else:
        return None
    return any("pooler" in key.split(".") for key in keys)


def _load_model(path: Path | str):
    """``AutoModel.from_pretrained``, with a pooler layer exactly when the checkpoint holds one (never a random one)."""
    from transformers import AutoConfig, AutoModel

    kwargs = {}
    local = Path(path)
    if local.is_dir():
        config = AutoConfig.from_pretrained(local)
        try:
            model_class = AutoModel._model_mapping[type(config)]
        except KeyError:
            model_class = None
        accepts = model_class is not None and "add_pooling_layer" in inspect.signature(model_class.__init__).parameters
        has_pooler = _checkpoint_has_pooler(local)
        if accepts and has_pooler is not None:
            # Build exactly what the checkpoint holds (no MISSING/UNEXPECTED pooler keys).
            kwargs["add_pooling_layer"] = has_pooler
    return AutoModel.from_pretrained(str(path), **kwargs)


class Encoder:
    """A transformer + tokenizer + pooling; see the module docstring."""

    def __init__(self, model: torch.nn.Module, tokenizer, pooling: str, device: torch.device | str = "cpu",
                 metadata: dict | None = None, similarity: str = "cosine"):
        self.pooling = _check_pooling(pooling)
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; expected one of {', '.join(SIMILARITIES)}")
        self.similarity = similarity
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.metadata = dict(metadata or {})  # extra keys of margin_retrieval.json (e.g. the source), kept on save

    # -- loading and saving -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str, device: torch.device | str = torch.device("cpu"),
             pooling: str | None = None, light: bool = True) -> "Encoder":
        """Load a model directory (or a Hugging Face hub id, given ``pooling``).

        The pooling comes from ``pooling`` if given, else from the directory's ``margin_retrieval.json``, else from a
        sentence-transformers ``1_Pooling/config.json``. A plain BERT directory loads with ``light_bert`` (the same
        model without importing transformers: a job starts ~2 s sooner) unless ``light`` is False; anything else
        with transformers.
        """
        local = Path(path)
        metadata = {}
        config_path = local / CONFIG_FILE
        if config_path.is_file():
            metadata = json.loads(config_path.read_text())
        stored = metadata.pop("pooling", None)
        similarity = metadata.pop("similarity", "cosine")
        if pooling is None:
            pooling = stored if stored is not None else _pooling_from_sentence_transformers(local)
        if pooling is None:
            raise ValueError(
                f"no pooling given for {path}: it has no {config_path} (nor a sentence-transformers "
                f"1_Pooling/config.json with mean or cls pooling); pass pooling= one of {', '.join(POOLINGS)}"
            )
        _check_pooling(pooling)
        if light and local.is_dir() and light_bert.supports(local):
            model, tokenizer = light_bert.load(local)
        else:
            from transformers import AutoTokenizer

            model = _load_model(path)
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        if pooling == "pooler" and getattr(model, "pooler", None) is None:
            raise ValueError(f"pooling 'pooler' needs a pooler layer; the checkpoint in {path} has no pooler")
        return cls(model, tokenizer, pooling, device=device, metadata=metadata, similarity=similarity)

    def save(self, directory: Path | str) -> Path:
        """Write the model, the tokenizer, ``margin_retrieval.json`` and the sentence-transformers files.

        Writes into ``directory`` directly; wrap it in ``margin_retrieval.jobs.io.atomic_path`` for an atomic publish.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        config = {**self.metadata, "pooling": self.pooling, "similarity": self.similarity}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        self._save_sentence_transformers(directory)
        return directory

    def _save_sentence_transformers(self, directory: Path) -> None:
        """Transformer -> Pooling (-> Normalize for cosine), the layout of sentence-transformers' own models."""
        if self.pooling == "pooler":
            # sentence-transformers' Pooling module has no pooler_output mode: do not pretend.
            for stale in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
                (directory / stale).unlink(missing_ok=True)
            return
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if self.similarity == "cosine":  # a dot-product model is scored on the raw pooled vectors
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        pooling = {
            "word_embedding_dimension": self.dimension,
            "pooling_mode_cls_token": self.pooling == "cls",
            "pooling_mode_mean_tokens": self.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        }
        max_length = min(getattr(self.model.config, "max_position_embeddings", 512), 512)
        (directory / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
        (directory / "1_Pooling").mkdir(exist_ok=True)
        (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
        (directory / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2) + "\n")

    # -- forward ------------------------------------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Unpadded token ids of each text, truncated to ``max_length``: tokenize once, batch later with ``collate``."""
        return self.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]

    def collate(self, rows: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """The model inputs of token-id rows padded to the longest row: equal to ``tokenizer(padding=True)`` for
        single texts (attention mask 1 on tokens, token type 0, pad ids on the tokenizer's padding side)."""
        length = max(len(row) for row in rows)
        ids = np.full((len(rows), length), self.tokenizer.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for i, row in enumerate(rows):
            span = slice(length - len(row), length) if left else slice(0, len(row))
            ids[i, span] = row
            mask[i, span] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.tokenizer.model_input_names:
            batch["token_type_ids"] = np.full_like(ids, self.tokenizer.pad_token_type_id) * (1 - mask)
        return {key: torch.from_numpy(value).to(self.device) for key, value in batch.items()}

    def _pool(self, output, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "pooler":
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                raise ValueError("pooling 'pooler' but the model returns no pooler_output")
            return pooled.float()
        hidden = output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0].float()
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        summed = (hidden.float() * mask).sum(dim=1)
        return summed / mask.sum(dim=1).clamp(min=1e-9)

    def embed_tokens(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Pooled float32 embeddings [B, d] of token-id rows (from ``tokenize``), with autograd."""
        batch = self.collate(rows)
        output = self.model(**batch)
        return self._pool(output, batch["attention_mask"])

    def embed(self, texts: list[str], max_length: int) -> torch.Tensor:
        """Pooled float32 embeddings [B, d] of ``texts`` (truncated to ``max_length`` tokens), with autograd."""
        return self.embed_tokens(self.tokenize(texts, max_length))

    def encode(self, texts: list[str], max_length: int, batch_size: int = 64, precision: str = "auto",
               normalize: bool | None = None, progress: str | None = None) -> np.ndarray:
        """float32 embeddings [N, d] in the order of ``texts``; rows L2-normalised if ``normalize`` (default: if the
        model's similarity is cosine; a dot-product model's inner products are its scores as trained).

        Runs in eval mode (dropout off; the model's mode is restored afterwards) and sorts the texts by length so
        that each batch pads little. ``progress`` names the work in progress lines of the job log (none if None).
        """
        texts = list(texts)
        return self._encode_batches(lambda rows: self.tokenize([texts[i] for i in rows], max_length),
                                    longest_first(texts), batch_size, precision, normalize, progress)

    def encode_tokens(self, rows: Sequence[Sequence[int]], order: Sequence[int], batch_size: int = 64,
                      precision: str = "auto", normalize: bool | None = None) -> np.ndarray:
        """``encode`` of already tokenized texts, batched in ``order`` (``longest_first`` of the texts gives the
        batches, and so the embeddings, of ``encode``)."""
        return self._encode_batches(lambda batch: [rows[i] for i in batch], order, batch_size, precision, normalize)

    def _encode_batches(self, tokens_of: Callable[[list[int]], list], order: Sequence[int], batch_size: int,
                        precision: str, normalize: bool | None, progress: str | None = None) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if normalize is None:
            normalize = self.similarity == "cosine"
        out = np.empty((len(order), self.dimension), dtype=np.float32)
        tracker = Progress(len(order), progress, unit="texts", logger=log) if progress else None
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), autocast_context(self.device, precision):
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    pooled = self.embed_tokens(tokens_of(rows)).float()
                    if normalize:
                        pooled = torch.nn.functional.normalize(pooled, dim=-1)
                    out[rows] = pooled.cpu().numpy()
                    if tracker:
                        tracker.update(len(rows))
        finally:
            self.model.train(was_training)
        return out
