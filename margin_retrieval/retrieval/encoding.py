"""Encode one shard of a collection's documents, or all of its queries, into an embeddings file.

Rows are L2-normalised for a cosine model and raw for a dot-product one (``Encoder.encode`` follows the model's
``similarity``), so faiss' inner product is the score the model was trained for.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np

from margin_retrieval.data import collections
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.models.identity import encodes_alike
from margin_retrieval.jobs.io import atomic_path, save_embeddings

log = logging.getLogger(__name__)


def parse_shard(scatteritem: str) -> tuple[int, int]:
    """Snakemake's ``{scatteritem}`` is '<i>-of-<n>' with i counted from 1."""
    match = re.fullmatch(r"(\d+)-of-(\d+)", scatteritem)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"not a shard name: {scatteritem!r} (expected '<i>-of-<n>')")
    return int(match[1]), int(match[2])


def shard_range(n_docs: int, shard: int, n_shards: int) -> tuple[int, int]:
    """Contiguous, near-equal ranges that cover [0, n_docs) exactly once."""
    start = (shard - 1) * n_docs // n_shards
    stop = shard * n_docs // n_shards
    return start, stop


def encode_docs_shard(encoder: Encoder, dataset, scatteritem: str, max_length: int, batch_size: int,
                      precision: str, fp16: bool, out: Path) -> int:
    shard, n_shards = parse_shard(scatteritem)
    start, stop = shard_range(collections.doc_count(dataset), shard, n_shards)
    ids, texts = [], []
    for doc_id, text in collections.docs_slice(dataset, start, stop):
        ids.append(doc_id)
        texts.append(text)
    embeddings = encoder.encode(texts, max_length, batch_size, precision,
                                progress=f"encode_docs shard {shard}/{n_shards}")
    save_embeddings(out, np.asarray(ids), embeddings.astype(np.float16) if fp16 else embeddings)
    return len(ids)


def encode_queries(encoder: Encoder, dataset, max_length: int, batch_size: int, precision: str, out: Path) -> int:
    queries = collections.queries(dataset)
    ids = sorted(queries)
    embeddings = encoder.encode([queries[q] for q in ids], max_length, batch_size, precision,
                                progress="encode_queries")
    save_embeddings(out, np.asarray(ids), embeddings)
    return len(ids)


def reuse_encoding(model: Path, reference_model: Path, reference: Path, out: Path) -> bool:
    """Copy ``reference`` (the same texts encoded with ``reference_model``) to ``out`` when ``model`` encodes alike
    (``models.identity``: a trained run that kept its untrained model); False, writing nothing, otherwise.

    A copy, not a link: the output gets its own modification time, as if encoded now, so Snakemake does not find it
    older than the trained model it comes from."""
    if not encodes_alike(model, reference_model):
        return False
    with atomic_path(out) as tmp:
        shutil.copyfile(reference, tmp)
    log.info("%s holds the weights of %s unchanged: its embeddings are %s, copied", model, reference_model, reference)
    return True
