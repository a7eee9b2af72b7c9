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


rule score_teacher:
    input:
        model=teacher_model_input,
        triples="results/train_data/{source}/triples.tsv",
        manifest=f"results/data/{TRAIN_COLLECTION}/manifest.json",
    output:
        "results/train_data/{source}/teacher_scores.tsv",
    log:
        "results/logs/score_teacher/{source}.log",
    benchmark:
        "results/benchmarks/score_teacher/{source}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: workflow.cores
    resources:
        gpu=0,
    params:
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        similarity=config["train_data"]["teacher_similarity"],
        scores_file=config["train_data"]["teacher_scores_file"],
        max_query_length=config["training"]["max_query_length"],
        max_doc_length=config["training"]["max_doc_length"],
        batch_size=config["retrieval"]["batch_size"],
        precision=config["training"]["precision"],
        home=ir_home(),
    script:
        "../workflow_scripts/score_teacher.py"
