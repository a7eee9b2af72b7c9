"""How every training run ended and the validation-test agreement: figures/training_summary.tsv (one row per run
and collection) and figures/validation_agreement.json (Spearman per collection, stop-reason counts); and how large
a validation difference within each run is noise: figures/validation_noise.tsv (one row per run); and each setting's
learning rate chosen on validation: figures/learning_rates.tsv (the settings trained at several rates).

input.manifest: results/systems.json (training logs); input.results: figures/results.tsv; input.logs: the logs,
for the DAG.
"""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.numbers.learning_rates import write_learning_rate_table
from margin_retrieval.analysis.numbers.train_logs import load_runs
from margin_retrieval.analysis.numbers.validation_agreement import write_training_summary
from margin_retrieval.analysis.numbers.validation_noise import write_noise_table
from margin_retrieval.analysis.results import read_results
from margin_retrieval.analysis.systems import read_manifest

runs = load_runs(read_manifest(snakemake.input.manifest))
write_training_summary(runs, read_results(snakemake.input.results), snakemake.output.tsv, snakemake.output.json)
write_noise_table({run["system"]: run["train_log"] for run in sorted(runs, key=lambda r: r["system"])},
                  snakemake.output.noise)
write_learning_rate_table(runs, snakemake.output.learning_rates)
