"""Score every training triple with the teacher model (Margin-MSE targets)."""

from pathlib import Path

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import torch

from margin_retrieval.data import collections
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.jobs.io import read_tsv, write_tsv
from margin_retrieval.data.teacher_scores import scores_from_file
from margin_retrieval.training.teacher import HEADER, score_triples
from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.precision import resolve

torch.set_num_threads(snakemake.threads)
p = snakemake.params
if not p.scores_file:  # scoring with the teacher model: no CUDA for a gpu job fails before any data is read
    device = resolve_device("auto", snakemake.resources.get("gpu", 0) > 0)
triples = [(r["qid"], r["pos_id"], r["neg_id"]) for r in read_tsv(snakemake.input.triples)]
if p.scores_file:
    rows = scores_from_file(p.scores_file, triples)
else:
    collections.configure_home(p.home)
    dataset = collections.load(p.spec, p.name)
    query_text = collections.queries(dataset)
    doc_text = collections.doc_lookup(dataset, sorted({d for _, pos, neg in triples for d in (pos, neg)}))
    encoder = Encoder.load(Path(snakemake.input.model), device=device)
    rows = score_triples(encoder, triples, query_text, doc_text, p.max_query_length, p.max_doc_length, p.batch_size,
                         similarity=p.similarity,
                         precision=resolve(p.precision, device, snakemake.input.get("precision")))
write_tsv(snakemake.output[0], HEADER, rows)
