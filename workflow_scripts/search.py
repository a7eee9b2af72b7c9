"""Search every document shard of a corpus with every query of a collection, one shard at a time (faiss, inner
product on normalised embeddings), into one top-k file."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.retrieval.search import search_files

search_files(snakemake.input.queries, snakemake.input.docs, snakemake.output[0], k=snakemake.params.depth,
             index_factory=snakemake.params.index, threads=snakemake.threads)
