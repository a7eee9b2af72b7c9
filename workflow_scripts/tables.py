"""Main results tables (Markdown, LaTeX, TSV) with paired t-tests (Holm) and TOST equivalence vs the reference.

input.results: results.tsv; input.per_query: results/eval/{collection}/{system}.tsv; params.systems: aligned dicts
(system, collection, ...); params.analysis: the config's analysis section; output.markdown, output.latex, and
optionally output.tsv.
"""

from margin_retrieval.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.tables import build_tables

build_tables(snakemake.input.results, list(snakemake.input.per_query), snakemake.params.systems,
             snakemake.params.analysis, snakemake.output.markdown, snakemake.output.latex,
             snakemake.output.get("tsv"))
