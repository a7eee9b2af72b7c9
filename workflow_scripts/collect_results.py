"""Collect every aggregate evaluation into figures/results.tsv (one row per system x collection x measure).

input.manifest: results/systems.json (each record names its aggregate file); input.aggregates: those files, for the
DAG.
"""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.results import collect_results, write_results
from margin_retrieval.analysis.systems import read_manifest

write_results(collect_results(read_manifest(snakemake.input.manifest)), snakemake.output[0])
