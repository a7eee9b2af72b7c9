"""Measure what `precision: auto` means on this CPU (bf16 autocast or fp32) once, for every job of the results folder."""

import logging

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import torch

from margin_retrieval.models.precision import write_decision

torch.set_num_threads(snakemake.threads)
decision = write_decision(snakemake.output[0])
logging.getLogger(__name__).info("precision auto on this CPU: %s (%s)", decision["precision"], decision)
