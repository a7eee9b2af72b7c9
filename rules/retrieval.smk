rule encode_docs:
    input:
        unpack(precision_input),
        unpack(same_weights_reference),
        model=system_model_dir,
        manifest=lambda wc: f"results/data/{CORPUS_SOURCE[wc.corpus]}/manifest.json",
    output:
        [
            intermediate(path)
            for path in scatter.shard(
                "results/embeddings/{{system}}/corpus/{{corpus}}/docs-{scatteritem}.npz"
            )
        ],
    log:
        "results/logs/encode_docs/{system}/{corpus}.log",
    benchmark:
        "results/benchmarks/encode_docs/{system}/{corpus}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: JOB_THREADS
    resources:
        gpu=0,
    params:
        spec=lambda wc: DATA_SPECS[CORPUS_SOURCE[wc.corpus]],
        name=lambda wc: CORPUS_SOURCE[wc.corpus],
        max_length=config["training"]["max_doc_length"],
        batch_size=config["retrieval"]["batch_size"],
        precision=config["training"]["precision"],
        fp16=config["retrieval"]["fp16_embeddings"],
        home=ir_home(),
    script:
        "../workflow_scripts/encode.py"


rule encode_queries:
    input:
        unpack(precision_input),
        unpack(same_weights_reference),
        model=system_model_dir,
        manifest="results/data/{data}/manifest.json",
    output:
        "results/embeddings/{system}/{data}/queries.npz",
    log:
        "results/logs/encode_queries/{system}/{data}.log",
    benchmark:
        "results/benchmarks/encode_queries/{system}/{data}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: JOB_THREADS
    resources:
        gpu=0,
    params:
        spec=lambda wc: DATA_SPECS[wc.data],
        name=lambda wc: wc.data,
        max_length=lambda wc: query_length(wc.data),
        batch_size=config["retrieval"]["batch_size"],
        precision=config["training"]["precision"],
        fp16=False,
        home=ir_home(),
    script:
        "../workflow_scripts/encode.py"


rule search:
    input:
        queries="results/embeddings/{system}/{collection}/queries.npz",
        docs=corpus_shards,
    output:
        intermediate("results/search/{system}/{collection}/topk.npz"),
    log:
        "results/logs/search/{system}/{collection}.log",
    benchmark:
        "results/benchmarks/search/{system}/{collection}.tsv"
    conda:
        "../envs/retrieval.yaml"
    threads: JOB_THREADS
    params:
        depth=config["retrieval"]["depth"],
        index=config["retrieval"]["index"],
    script:
        "../workflow_scripts/search.py"


rule write_run:
    input:
        topk="results/search/{system}/{collection}/topk.npz",
        queries="results/embeddings/{system}/{collection}/queries.npz",
    output:
        "results/runs/{collection}/{system}.trec",
    log:
        "results/logs/write_run/{collection}/{system}.log",
    benchmark:
        "results/benchmarks/write_run/{collection}/{system}.tsv"
    conda:
        "../envs/retrieval.yaml"
    params:
        tag=run_tag,
    script:
        "../workflow_scripts/write_run.py"


rule rank_training_queries:
    input:
        unpack(zeroshot_embeddings_of_training_data),
        manifest=f"results/data/{TRAIN_COLLECTION}/manifest.json",
    output:
        "results/train_data/student/{model}/ranking.tsv",
    log:
        "results/logs/rank_training_queries/{model}.log",
    benchmark:
        "results/benchmarks/rank_training_queries/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: JOB_THREADS
    params:
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        deepest_cut=max(
            SETTINGS.train_data.negatives.depth, SETTINGS.train_data.validation.depth
        ),
        home=ir_home(),
    script:
        "../workflow_scripts/rank_training_queries.py"
