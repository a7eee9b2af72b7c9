rule evaluate:
    input:
        run="results/runs/{collection}/{system}.trec",
        manifest="results/data/{collection}/manifest.json",
    output:
        per_query=f"results/{archive.evaluation('{collection}', '{system}', 'tsv')}",
        aggregate=f"results/{archive.evaluation('{collection}', '{system}', 'json')}",
    log:
        "results/logs/evaluate/{collection}/{system}.log",
    benchmark:
        "results/benchmarks/evaluate/{collection}/{system}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        spec=lambda wc: DATA_SPECS[wc.collection],
        name=lambda wc: wc.collection,
        measures=lambda wc: config["collections"][wc.collection]["measures"],
        binarize_at=lambda wc: config["collections"][wc.collection]["binarize_at"],
        relevance_map=lambda wc: checks.relevance_map(
            config["collections"][wc.collection]["relevance_map"], f"collections.{wc.collection}.relevance_map"
        ),
        home=ir_home(),
    script:
        "../workflow_scripts/evaluate.py"


rule summarize:
    input:
        unpack(summary_train_log),
        aggregate=summary_aggregate,
    output:
        "results/summaries/{collection}/{system}.json",
    log:
        "results/logs/summarize/{collection}/{system}.log",
    benchmark:
        "results/benchmarks/summarize/{collection}/{system}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        collection_spec=lambda wc: DATA_SPECS[wc.collection],
        system=lambda wc: system_description(wc.system),
        run_config=lambda wc: {
            key: config[key]
            for key in ("models", "train_data", "training", "retrieval")
        },
    script:
        "../workflow_scripts/summarize.py"
