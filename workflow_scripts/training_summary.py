"""How every training run ended and the validation-test agreement: figures/training_summary.tsv (one row per run
and collection) and figures/validation_agreement.json (Spearman per collection, stop-reason counts).

input.manifest: results/systems.json (training logs); input.results: figures/results.tsv; input.logs: the logs,
for the DAG.
"""

from margin_retrieval.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.numbers.train_logs import load_runs
from margin_retrieval.analysis.numbers.validation_agreement import write_training_summary
from margin_retrieval.analysis.results import read_results
from margin_retrieval.analysis.systems import read_manifest

write_training_summary(load_runs(read_manifest(snakemake.input.manifest)), read_results(snakemake.input.results),
                       snakemake.output.tsv, snakemake.output.json)
