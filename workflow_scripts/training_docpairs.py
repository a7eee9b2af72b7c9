"""Docpairs mode (MS MARCO): the dataset's docpairs as triples, with their split and validation candidates (and, with
train_data.teacher_pairs: scored, the Margin-MSE runs' triples: the pairs of the published scores file)."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.data.training_data import make_docpairs_data

p = snakemake.params
collections.configure_home(p.home)
make_docpairs_data(collections.load(dict(p.spec), p.name), p.settings, dict(snakemake.output.items()),
                   snakemake.input.get("student_ranking"), scored_pairs=snakemake.input.get("scored_pairs"))
