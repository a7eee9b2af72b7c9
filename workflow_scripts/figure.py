"""Draw one figure, chosen by params.figure (see margin_retrieval.analysis.figures.build_figure for the inputs of each).

tau / data_efficiency: input.results; training_curves / targets: input.logs + params.runs (aligned);
speedup: input.logs + params.runs + input.teacher_benchmark (optional); per_query: input.per_query + params.systems.
params.analysis: the config's analysis section. output.png, output.pdf (+ output.json, output.tsv where written).
"""

from margin_retrieval.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.figures import build_figure

build_figure(snakemake.params.figure, dict(snakemake.input.items()), dict(snakemake.params.items()),
             dict(snakemake.output.items()))
