"""Write the machine-readable summary of one system on one collection (measures, config, seed, version)."""

from margin_retrieval.jobs.logs import setup_job_logging

setup_job_logging(snakemake.log[0])

from margin_retrieval.evaluation.summary import write_summary

p = snakemake.params
write_summary(snakemake.output[0], aggregate_path=snakemake.input.aggregate, collection=snakemake.wildcards.collection,
              collection_spec=p.collection_spec, system=p.system, run_config=p.run_config,
              train_log=snakemake.input.get("train_log"))
