"""Collect every aggregate evaluation into results/tables/results.tsv (one row per system x collection x measure).

input.aggregates: results/eval/{collection}/{system}.json; params.systems: aligned dicts (system, collection, kind,
model, objective, in_batch, tau, fraction).
"""

from margin_retrieval.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.tables import collect_results, write_results

write_results(collect_results(list(snakemake.input.aggregates), snakemake.params.systems), snakemake.output[0])
