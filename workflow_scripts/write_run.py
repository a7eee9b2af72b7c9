"""Write the TREC run of every query of a collection from its top-k file."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.retrieval.search import write_run_from_topk

write_run_from_topk(snakemake.input.topk, snakemake.input.queries, snakemake.output[0], tag=snakemake.params.tag)
