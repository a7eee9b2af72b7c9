"""Held-out validation queries, the seeded train order and the validation candidates (shared by every run)."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.data.training_data import make_split

p = snakemake.params
collections.configure_home(p.home)
make_split(collections.load(dict(p.spec), p.name), p.settings,
           {key: getattr(snakemake.output, key) for key in ("splits", "candidates", "stats")},
           snakemake.input.get("student_ranking"))
