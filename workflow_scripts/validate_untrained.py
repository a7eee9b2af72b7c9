"""Validate a student's untrained model once, for every run of it to log as its step 0."""

from dataclasses import replace
from pathlib import Path

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import torch

from margin_retrieval.data import collections
from margin_retrieval.models.device import resolve_device
from margin_retrieval.models.precision import resolve
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.data import load_validation_data
from margin_retrieval.training.untrained import validate_untrained

training = snakemake.params.training
device = resolve_device(training.device, gpu_requested=False)
training = replace(training, precision=resolve(training.precision, device, snakemake.input.get("precision")))
torch.set_num_threads(snakemake.threads)
collections.configure_home(snakemake.params.home)
dataset = collections.load(snakemake.params.spec, snakemake.params.name)
data = load_validation_data(Path(snakemake.input.splits), Path(snakemake.input.candidates),
                            query_text=collections.queries(dataset), qrels=collections.qrels(dataset),
                            doc_lookup=lambda ids: collections.doc_lookup(dataset, ids))
validate_untrained(Path(snakemake.input.base_model), data, TrainConfig.from_config(training, snakemake.params.run),
                   device, Path(snakemake.output[0]))
