"""Make one collection usable offline (ir_datasets download, or the configured offline mirror); write its manifest."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.data import collections
from margin_retrieval.jobs.io import write_json

p = snakemake.params
manifest = collections.prepare(dict(p.spec), snakemake.wildcards.data, mirrors=dict(p.mirrors or {}), home=p.home,
                               parts=list(p.parts))
write_json(snakemake.output[0], manifest)
