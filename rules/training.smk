rule score_teacher:
    input:
        unpack(precision_input),
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
    threads: JOB_THREADS
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


rule cluster_training_data:
    # Shared by every clustered run of a triples set, model and data fraction; no other grid column changes them.
    input:
        unpack(zeroshot_embeddings_of_training_data),
        triples="results/train_data/{source}/triples.tsv",
        splits="results/train_data/splits.json",
    output:
        clusters="results/train_data/{source}/clusters/{model}/fraction~{fraction}.tsv",
        stats="results/train_data/{source}/clusters/{model}/fraction~{fraction}.json",
    log:
        "results/logs/cluster_training_data/{source}/{model}/fraction~{fraction}.log",
    benchmark:
        "results/benchmarks/cluster_training_data/{source}/{model}/fraction~{fraction}.tsv"
    wildcard_constraints:
        fraction=r"[0-9.e-]+",
    conda:
        "../envs/retrieval.yaml"
    threads: JOB_THREADS
    params:
        batch_size=config["training"]["batch_size"],
        seed=config["train_data"]["seed"],
    script:
        "../workflow_scripts/cluster_training_data.py"


rule validate_untrained:
    input:
        unpack(precision_input),
        base_model="results/models/{model}",
        splits="results/train_data/splits.json",
        candidates="results/train_data/validation_candidates.tsv",
        manifest=f"results/data/{TRAIN_COLLECTION}/manifest.json",
    output:
        "results/train_data/untrained_validation/{model}/{similarity}.json",
    log:
        "results/logs/validate_untrained/{model}/{similarity}.log",
    benchmark:
        "results/benchmarks/validate_untrained/{model}/{similarity}.tsv"
    wildcard_constraints:
        similarity="cosine|dot",
    conda:
        "../envs/torch.yaml"
    threads: JOB_THREADS
    params:
        run=untrained_validation_run,
        training=SETTINGS.training,
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        home=ir_home(),
    script:
        "../workflow_scripts/validate_untrained.py"


rule train:
    input:
        unpack(precision_input),
        unpack(untrained_validation_input),
        base_model="results/models/{model}",
        triples=run_triples,
        splits="results/train_data/splits.json",
        candidates="results/train_data/validation_candidates.tsv",
        manifest=f"results/data/{TRAIN_COLLECTION}/manifest.json",
        teacher_scores=teacher_scores_input,
        clusters=clusters_input,
    output:
        model=directory(f"results/train/{TRAIN_SPACE.wildcard_pattern}/model"),
        log=f"results/{archive.train_log(TRAIN_SPACE.wildcard_pattern)}",
    log:
        f"results/logs/train/{TRAIN_SPACE.wildcard_pattern}.log",
    benchmark:
        f"results/{archive.train_benchmark(TRAIN_SPACE.wildcard_pattern)}"
    conda:
        "../envs/torch.yaml"
    threads: JOB_THREADS
    resources:
        gpu=0,
    params:
        run=lambda wc: run_of(wc).description(),
        training=lambda wc: run_training(run_of(wc)),
        work_dir=lambda wc, output: str(Path(output.log).parent / "checkpoint"),
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        home=ir_home(),
    script:
        "../workflow_scripts/train.py"
