rule collect_results:
    input:
        aggregates=eval_files("json"),
    output:
        "results/tables/results.tsv",
    params:
        systems=[
            {**system_description(system), "collection": collection}
            for collection in COLLECTIONS
            for system in all_systems()
        ],
    log:
        "results/logs/collect_results.log",
    benchmark:
        "results/benchmarks/collect_results.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/collect_results.py"


def all_targets():
    return ["results/tables/results.tsv"]
