# Self-distillation with adaptive relevance margins: data -> triples -> training -> encoding -> search ->
# TREC runs -> evaluation -> tables and figures. See README.md; stages live in rules/, code in margin_retrieval/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/training.smk"
include: "rules/retrieval.smk"
include: "rules/evaluation.smk"
include: "rules/analysis.smk"


report: "report/workflow.rst"


rule all:
    input:
        all_targets(),
    default_target: True
