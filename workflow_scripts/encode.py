"""Encode a collection's documents (one shard) or queries with a model directory."""

from pathlib import Path

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import torch

from margin_retrieval.data import collections
from margin_retrieval.retrieval.encoding import encode_docs_shard, encode_queries, reuse_encoding
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.precision import resolve

device = resolve_device("auto", snakemake.resources.get("gpu", 0) > 0)  # before any data is read
inputs, out = snakemake.input, Path(snakemake.output[0])
# A trained run that kept its untrained weights shares the zero-shot system's embeddings (rules/common.smk
# same_weights_reference); anything else is encoded.
reused = "reference" in inputs.keys() and reuse_encoding(Path(inputs.model), Path(inputs.reference_model),
                                                         Path(inputs.reference), out)
if not reused:
    torch.set_num_threads(snakemake.threads)
    collections.configure_home(snakemake.params.home)
    dataset = collections.load(snakemake.params.spec, snakemake.params.name)
    encoder = Encoder.load(Path(inputs.model), device=device)
    p = snakemake.params
    precision = resolve(p.precision, device, inputs.get("precision"))
    if "scatteritem" in snakemake.wildcards.keys():
        encode_docs_shard(encoder, dataset, snakemake.wildcards.scatteritem, p.max_length, p.batch_size, precision,
                          p.fp16, out)
    else:
        encode_queries(encoder, dataset, p.max_length, p.batch_size, precision, out)
