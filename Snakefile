# Self-distillation with adaptive relevance margins: data -> triples -> training -> encoding -> search ->
# TREC runs -> evaluation -> tables and figures. See README.md; stages live in rules/, code in margin_retrieval/.

from snakemake.utils import min_version

min_version("9.0")


# A --configfile replaces the embedded default instead of being merged into it (the paper's config shares no collection
# or experiment group with it). Combine files explicitly: --configfile config.yaml config/scifact_full.yaml
if not workflow.overwrite_configfiles:

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
