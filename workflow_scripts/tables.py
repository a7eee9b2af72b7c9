"""Main results tables (Markdown, LaTeX, TSV): means over seeds with 95% intervals, paired t-tests (Holm) and TOST
equivalence against each model's reference.

input.manifest: results/systems.json (names each system's per-query file); input.results: results.tsv;
params.analysis: the config's analysis section; params.measures: collection -> configured measures;
output.markdown, output.latex, and optionally output.tsv.
"""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.tables import build_tables

build_tables(snakemake.input.manifest, snakemake.input.results, snakemake.params.analysis,
             snakemake.params.measures, snakemake.output.markdown, snakemake.output.latex,
             snakemake.output.get("tsv"))
