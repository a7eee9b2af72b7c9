rule prepare_model:
    output:
        directory("results/models/{model}"),
    log:
        "results/logs/prepare_model/{model}.log",
    benchmark:
        "results/benchmarks/prepare_model/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    params:
        source=lambda wc: config["models"][wc.model]["source"],
        pooling=lambda wc: config["models"][wc.model]["pooling"],
    script:
        "../workflow_scripts/prepare_model.py"


rule cpu_precision:
    output:
        "results/precision.json",
    log:
        "results/logs/cpu_precision.log",
    benchmark:
        "results/benchmarks/cpu_precision.tsv"
    conda:
        "../envs/torch.yaml"
    threads: JOB_THREADS
    script:
        "../workflow_scripts/cpu_precision.py"
