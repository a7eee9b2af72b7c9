# Self-distillation with adaptive relevance margins: data -> triples -> training -> encoding -> search ->
# TREC runs -> evaluation -> tables and figures. See README.md; stages live in rules/, code in margin_retrieval/.

from snakemake.utils import min_version

from margin_retrieval.workflow.checks import check_yaml_syntax
from margin_retrieval.jobs.errors import exit_on_user_error

min_version("9.0")


# A mistake in the config or the input files ends the run with its message alone, before any job.
with exit_on_user_error():
    # A --configfile replaces the embedded default instead of being merged into it (the paper's config shares no
    # collection or experiment group with it). Combine files explicitly:
    #   --configfile config.yaml config/scifact_full.yaml
    if not workflow.overwrite_configfiles:
        check_yaml_syntax("config.yaml")

        configfile: "config.yaml"

    include: "rules/common.smk"


include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/training.smk"
include: "rules/retrieval.smk"
include: "rules/evaluation.smk"
include: "rules/analysis.smk"


report: "rules/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
