"""Docpairs mode (MS MARCO): the dataset's docpairs as triples, with their split and validation candidates."""

from margin_retrieval.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.data.training_data import Embeddings, make_docpairs_data

p = snakemake.params
collections.configure_home(p.home)
make_docpairs_data(collections.load(dict(p.spec), p.name), p.settings,
                   {key: getattr(snakemake.output, key) for key in ("splits", "candidates", "triples", "stats")},
                   Embeddings.from_job_input(snakemake.input))
