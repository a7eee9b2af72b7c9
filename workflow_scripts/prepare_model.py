"""Turn a config model source (onnx:, package:, a directory or a hub id) into a model directory."""

from pathlib import Path

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.models.sources import prepare_model

prepare_model(snakemake.params.source, snakemake.params.pooling, Path(snakemake.output[0]))
