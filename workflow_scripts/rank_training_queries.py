"""A zero-shot student's ranking of the training queries, the first stage of its negatives (and validation
candidates)."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.retrieval.first_stage import write_student_ranking

p = snakemake.params
collections.configure_home(p.home)
qrels = collections.qrels(collections.load(dict(p.spec), p.name))
write_student_ranking(snakemake.input.queries, list(snakemake.input.docs), qrels, p.deepest_cut, snakemake.output[0])
