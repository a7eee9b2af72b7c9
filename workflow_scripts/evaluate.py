"""Evaluate one TREC run with ir_measures, cross-checked against trectools."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.evaluation.measures import evaluate_to_files

collections.configure_home(snakemake.params.home)
dataset = collections.load(snakemake.params.spec, snakemake.params.name)
evaluate_to_files(snakemake.input.run, collections.qrels(dataset, snakemake.params.relevance_map),
                  snakemake.params.measures, snakemake.params.binarize_at, snakemake.output.per_query,
                  snakemake.output.aggregate)
