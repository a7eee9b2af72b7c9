"""The training triples of one negative source (BM25, or one student's zero-shot ranking) over the shared split."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.data.training_data import make_mined_triples

p = snakemake.params
collections.configure_home(p.home)
make_mined_triples(collections.load(dict(p.spec), p.name), p.settings, p.source, snakemake.input.splits,
                   {key: getattr(snakemake.output, key) for key in ("triples", "stats")},
                   snakemake.input.get("student_ranking"), teacher_scores_file=p.teacher_scores_file)
