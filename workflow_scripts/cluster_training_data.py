"""Cluster the training triples of one data fraction with the zero-shot student (for clustered batching)."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

import logging

from margin_retrieval.jobs.io import load_embeddings, write_json, write_tsv
from margin_retrieval.training.clustering import (cluster_examples, cluster_statistics, example_embeddings,
                                                  lookup_embeddings)
from margin_retrieval.training.data import fraction_triples

p = snakemake.params
triples, _ = fraction_triples(snakemake.input.triples, snakemake.input.splits, float(snakemake.wildcards.fraction))
query_ids, query_vectors = load_embeddings(snakemake.input.queries)
query_emb = dict(zip(query_ids.tolist(), query_vectors))
doc_emb = lookup_embeddings({pos for _, pos, _ in triples}, list(snakemake.input.docs))
clusters = cluster_examples(example_embeddings(triples, query_emb, doc_emb), p.batch_size, p.seed)
stats = cluster_statistics(clusters, p.batch_size)
logging.getLogger(__name__).info("%d triples in %d clusters (sizes %d..%d, %.0f%% in single-cluster batches)",
                                 stats["n_examples"], stats["n_clusters"], stats["size_min"], stats["size_max"],
                                 100 * stats["share_in_single_cluster_batches"])
write_tsv(snakemake.output.clusters, ["qid", "pos_id", "neg_id", "cluster"],
          [(*triple, int(cluster)) for triple, cluster in zip(triples, clusters)])
write_json(snakemake.output.stats, {"model": snakemake.wildcards.model, "fraction": float(snakemake.wildcards.fraction),
                                    "seed": p.seed, **stats})
