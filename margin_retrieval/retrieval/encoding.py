"""Encode a collection's documents into shard files, or its queries into one embeddings file.

Rows are L2-normalised for a cosine model and raw for a dot-product one (``Encoder.encode`` follows the model's
``similarity``), so faiss' inner product is the score the model was trained for.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from margin_retrieval.data import collections
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.models.identity import encodes_alike
from margin_retrieval.jobs.io import atomic_path, save_embeddings

log = logging.getLogger(__name__)


def shard_range(n_docs: int, shard: int, n_shards: int) -> tuple[int, int]:
    """Contiguous, near-equal ranges that cover [0, n_docs) exactly once."""
    start = (shard - 1) * n_docs // n_shards
    stop = shard * n_docs // n_shards
    return start, stop


def encode_docs(encoder: Encoder, dataset, max_length: int, batch_size: int, precision: str, fp16: bool,
                outs: Sequence[Path]) -> int:
    """Encode the collection's documents into ``len(outs)`` contiguous shards, one after the other (one shard's texts
    and embeddings in memory at a time, one job per corpus instead of one per shard); returns the documents encoded."""
    n_docs, n_shards, total = collections.doc_count(dataset), len(outs), 0
    for shard, out in enumerate(outs, start=1):
        ids, texts = [], []
        for doc_id, text in collections.docs_slice(dataset, *shard_range(n_docs, shard, n_shards)):
            ids.append(doc_id)
            texts.append(text)
        embeddings = encoder.encode(texts, max_length, batch_size, precision,
                                    progress=f"encode_docs shard {shard}/{n_shards}")
        save_embeddings(out, np.asarray(ids), embeddings.astype(np.float16) if fp16 else embeddings)
        total += len(ids)
    return total


def encode_queries(encoder: Encoder, dataset, max_length: int, batch_size: int, precision: str, out: Path) -> int:
    queries = collections.queries(dataset)
    ids = sorted(queries)
    embeddings = encoder.encode([queries[q] for q in ids], max_length, batch_size, precision,
                                progress="encode_queries")
    save_embeddings(out, np.asarray(ids), embeddings)
    log.info("%d queries encoded at up to %d tokens", len(ids), max_length)
    return len(ids)


def reuse_encoding(model: Path, reference_model: Path, references: Sequence[Path], outs: Sequence[Path]) -> bool:
    """Copy ``references`` (the same texts encoded with ``reference_model``) to ``outs`` when ``model`` encodes alike
    (``models.identity``: a trained run that kept its untrained model); False, writing nothing, otherwise.

    Copies, not links: each output gets its own modification time, as if encoded now, so Snakemake does not find it
    older than the trained model it comes from."""
    if not encodes_alike(model, reference_model):
        return False
    for reference, out in zip(references, outs, strict=True):
        with atomic_path(out) as tmp:
            shutil.copyfile(reference, tmp)
    log.info("%s holds the weights of %s unchanged: its embeddings are copies of %s", model, reference_model,
             ", ".join(map(str, references)))
    return True
