"""Encode a collection's documents (every shard, one after the other) or queries with a model directory."""

from pathlib import Path

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import torch

from margin_retrieval.data import collections
from margin_retrieval.retrieval.encoding import encode_docs, encode_queries, reuse_encoding
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.precision import resolve

device = resolve_device("auto", snakemake.resources.get("gpu", 0) > 0)  # before any data is read
inputs, outs = snakemake.input, [Path(path) for path in snakemake.output]
# A trained run that kept its untrained weights shares the zero-shot system's embeddings (rules/common.smk
# same_weights_reference); anything else is encoded.
reused = "reference" in inputs.keys() and reuse_encoding(Path(inputs.model), Path(inputs.reference_model),
                                                         [Path(path) for path in inputs.reference], outs)
if not reused:
    torch.set_num_threads(snakemake.threads)
    collections.configure_home(snakemake.params.home)
    dataset = collections.load(snakemake.params.spec, snakemake.params.name)
    encoder = Encoder.load(Path(inputs.model), device=device)
    p = snakemake.params
    precision = resolve(p.precision, device, inputs.get("precision"))
    if "corpus" in snakemake.wildcards.keys():
        encode_docs(encoder, dataset, p.max_length, p.batch_size, precision, p.fp16, outs)
    else:
        encode_queries(encoder, dataset, p.max_length, p.batch_size, precision, outs[0])
