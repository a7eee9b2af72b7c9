"""Training triples, query splits and validation candidates of the training collection."""

from margin_retrieval.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.data.triples import make_training_data

p = snakemake.params
collections.configure_home(p.home)
dataset = collections.load(dict(p.spec), p.name)
doc_embeddings = snakemake.input.get("doc_embeddings", [])
make_training_data(
    dataset, dict(p.train_data),
    {key: getattr(snakemake.output, key) for key in ("splits", "triples", "candidates", "stats")},
    query_embeddings=snakemake.input.get("query_embeddings"),
    doc_embeddings=[doc_embeddings] if isinstance(doc_embeddings, str) else list(doc_embeddings),
)
