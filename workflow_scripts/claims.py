"""The paper's claims as holds / does not hold / cannot tell, against the seed noise (claims.md, claims.tsv).

input.results: results.tsv; input.speedup: speedup.json; params.analysis: the config's analysis section;
params.negatives: the configured negative source; params.student: the student model; params.collections: the
configured collections, in order; output.markdown, output.tsv.
"""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.analysis.claims import build_claims

build_claims(snakemake.input.results, snakemake.input.speedup, snakemake.params.analysis,
             snakemake.params.negatives, snakemake.params.student, snakemake.output.markdown, snakemake.output.tsv,
             snakemake.params.collections)
