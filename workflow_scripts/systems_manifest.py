"""Write results/systems.json: one record per collection x system with its experiment columns and the paths of its
evaluation files, training log and benchmark (read by collect_results, tables and figures).

params.systems: the records (rules/common.smk systems_manifest); params.negatives_default: the configured negative
source, the value of a grid without a ``negatives`` column.
"""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.systems import write_manifest

write_manifest(snakemake.output[0], snakemake.params.systems, snakemake.params.negatives_default)
