rule train:
    input:
        base_model="results/models/{model}",
        triples=run_triples,
        splits="results/train_data/splits.json",
        candidates="results/train_data/validation_candidates.tsv",
        manifest=f"results/data/{TRAIN_COLLECTION}/manifest.json",
        teacher_scores=teacher_scores_input,
    output:
        model=directory(f"results/train/{TRAIN_SPACE.wildcard_pattern}/model"),
        log=f"results/train/{TRAIN_SPACE.wildcard_pattern}/train_log.jsonl",
    log:
        f"results/logs/train/{TRAIN_SPACE.wildcard_pattern}.log",
    benchmark:
        f"results/benchmarks/train/{TRAIN_SPACE.wildcard_pattern}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: workflow.cores
    resources:
        gpu=0,
    params:
        run=lambda wc: run_description(TRAIN_SPACE.instance(wc)),
        training=SETTINGS.training,
        work_dir=lambda wc, output: str(Path(output.log).parent / "checkpoint"),
        spec=DATA_SPECS[TRAIN_COLLECTION],
        name=TRAIN_COLLECTION,
        home=ir_home(),
    script:
        "../workflow_scripts/train.py"
