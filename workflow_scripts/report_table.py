"""Render one result table (.md or .tsv) as an HTML page for the Snakemake report."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.report_pages import write_table_page

write_table_page(snakemake.input[0], snakemake.output[0], snakemake.params.title)
