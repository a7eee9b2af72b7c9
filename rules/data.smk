rule download:
    # Compute nodes are often offline: downloads run on the submitting machine.
    output:
        "results/data/{data}/manifest.json",
    log:
        "results/logs/download/{data}.log",
    benchmark:
        "results/benchmarks/download/{data}.tsv"
    localrule: True
    conda:
        "../envs/data.yaml"
    params:
        spec=lambda wc: DATA_SPECS[wc.data],
        mirrors=config["offline_mirrors"],
        home=ir_home(),
    script:
        "../workflow_scripts/download.py"


rule training_data:
    input:
        unpack(training_data_input),
    output:
        splits="results/train_data/splits.json",
        triples="results/train_data/triples.tsv",
        candidates="results/train_data/validation_candidates.tsv",
        stats="results/train_data/stats.json",
    log:
        "results/logs/training_data.log",
    benchmark:
        "results/benchmarks/training_data.tsv"
    conda:
        "../envs/data.yaml"
    params:
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        train_data=config["train_data"],
        home=ir_home(),
    script:
        "../workflow_scripts/training_data.py"
