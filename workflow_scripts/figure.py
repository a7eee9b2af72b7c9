"""Draw one figure, chosen by params.figure from the registry margin_retrieval.analysis.figures.FIGURES.

input.manifest: results/systems.json (training logs, benchmarks, per-query files); input.results: results.tsv;
input.teacher_benchmark (speedup, optional). params.analysis: the config's analysis section. output.png,
output.pdf (+ output.json, output.tsv where written).
"""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.figures import build_figure

build_figure(snakemake.params.figure, dict(snakemake.input.items()), dict(snakemake.params.items()),
             dict(snakemake.output.items()))
