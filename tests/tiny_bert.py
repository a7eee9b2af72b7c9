"""A tiny random BERT (~25k parameters) whose vocabulary covers the words of the tiny test collection.

Note: in transformers 5, ``BertTokenizerFast(vocab_file=...)`` silently ignores the file (every word becomes [UNK]);
``BertTokenizer(vocab=<path>)`` reads it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

from margin_retrieval.models.encoders import CONFIG_FILE, Encoder
from tests.tiny_collection import FILLER, TOPICS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EXTRA = [".", ",", "?", "!", "-", "(", ")", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "##s",
         "what", "how", "does", "to", "for", "with", "on", "query", "document"]


def vocabulary() -> list[str]:
    words = SPECIAL + [word for topic in TOPICS for word in topic] + FILLER + EXTRA
    seen: dict[str, None] = {}
    for word in words:
        seen.setdefault(word, None)
    return list(seen)


def make_tiny_bert(directory: Path, seed: int = 0) -> Path:
    """Build (once) a random BERT with mean pooling in ``directory``; same seed, same weights."""
    directory = Path(directory)
    if (directory / CONFIG_FILE).is_file() and (directory / "model.safetensors").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab_file))
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        vocab_size=len(vocab), max_position_embeddings=128)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        model = BertModel(config)  # with its pooler, so that pooling "pooler" can be tested
    Encoder(model.eval(), tokenizer, "mean").save(directory)
    return directory
