"""Merge the per-shard top-k lists exactly and write the TREC run of every query."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.retrieval.search import write_run_from_topk

write_run_from_topk(snakemake.input.topk, snakemake.input.queries, snakemake.output[0], k=snakemake.params.depth,
                    tag=snakemake.params.tag)
