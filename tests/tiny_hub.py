"""Tiny random encoders of the paper's three architectures, stored in a Hugging Face hub cache under the paper's hub
ids, so that ``prepare_model`` loads them by hub id offline (``HF_HOME`` pointing at the cache, ``HF_HUB_OFFLINE=1``).

The checkpoints have the hub checkpoints' shapes where the workflow cares: DistilBERT and MPNet are masked-LM
checkpoints (weights under ``distilbert.``/``mpnet.``, an LM head the encoder drops, MPNet without pooler weights),
RoBERTa carries pooler weights (the paper trains on its ``pooler_output``). Sizes are tiny (32-d, two layers) and the
tokenizer is a word-level one over the test collections' words, so ids stay within every vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from tests.tiny_bert import vocabulary

# The paper's hub ids (config/paper.yaml) -> architecture.
PAPER_MODELS = {
    "distilbert/distilbert-base-uncased": "distilbert",
    "microsoft/mpnet-base": "mpnet",
    "FacebookAI/roberta-base": "roberta",
}
REVISION = "0" * 40  # the snapshot a hub cache's refs/main points to


def word_tokenizer(words: Sequence[str] | None = None):
    """[CLS] words [SEP] over ``words`` (default: the test vocabulary; either way beginning with [PAD], [UNK], [CLS],
    [SEP], [MASK]), loadable with ``AutoTokenizer`` from its saved files."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(vocabulary() if words is None else words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_input_names=["input_ids", "attention_mask"])


def tiny_model(architecture: str, vocab_size: int):
    from transformers import (DistilBertConfig, DistilBertForMaskedLM, MPNetConfig, MPNetForMaskedLM, RobertaConfig,
                              RobertaModel)

    sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "vocab_size": vocab_size, "pad_token_id": 0}  # [PAD] is id 0; RoBERTa's positions count from it
    if architecture == "distilbert":
        return DistilBertForMaskedLM(DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                      vocab_size=vocab_size, pad_token_id=0))
    if architecture == "mpnet":
        return MPNetForMaskedLM(MPNetConfig(**sizes))
    return RobertaModel(RobertaConfig(**sizes), add_pooling_layer=True)


def make_hub_cache(hf_home: Path, seed: int = 0) -> Path:
    """Write the three tiny models into ``hf_home/hub`` under the paper's ids; returns ``hf_home``."""
    tokenizer = word_tokenizer()
    for offset, (hub_id, architecture) in enumerate(sorted(PAPER_MODELS.items())):
        repo = Path(hf_home) / "hub" / f"models--{hub_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / REVISION
        with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
            torch.manual_seed(seed + offset)
            tiny_model(architecture, len(tokenizer)).save_pretrained(snapshot)
        tokenizer.save_pretrained(snapshot)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(REVISION)
    return Path(hf_home)
