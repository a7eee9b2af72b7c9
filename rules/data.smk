rule download:
    # Compute nodes are often offline: downloads run on the submitting machine.
    output:
        "results/data/{data}/manifest.json",
    params:
        spec=lambda wc: DATA_SPECS[wc.data],
        mirrors=config["offline_mirrors"],
        home=ir_home(),
    log:
        "results/logs/download/{data}.log",
    benchmark:
        "results/benchmarks/download/{data}.tsv"
    conda:
        "../envs/data.yaml"
    localrule: True
    script:
        "../workflow_scripts/download.py"


def negative_rankings_input(wildcards):
    """Dense first-stage rankings of the zero-shot student, when negatives or candidates come from it."""
    sources = {
        config["train_data"]["negatives"]["source"],
        config["train_data"]["validation"]["candidates"],
    }
    if "student" not in sources:
        return {}
    system = f"zeroshot/{STUDENTS[0]}"
    return {
        "query_embeddings": f"results/embeddings/{system}/{TRAIN_COLLECTION}/queries.npz",
        "doc_embeddings": gather.shard(
            f"results/embeddings/{system}/{TRAIN_COLLECTION}/docs-{{scatteritem}}.npz"
        ),
    }


rule training_data:
    input:
        unpack(negative_rankings_input),
        manifest=f"results/data/{TRAIN_COLLECTION}/manifest.json",
    output:
        splits="results/train_data/splits.json",
        triples="results/train_data/triples.tsv",
        candidates="results/train_data/validation_candidates.tsv",
        stats="results/train_data/stats.json",
    params:
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        train_data=config["train_data"],
        home=ir_home(),
    log:
        "results/logs/training_data.log",
    benchmark:
        "results/benchmarks/training_data.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/training_data.py"
