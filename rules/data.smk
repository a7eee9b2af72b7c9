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
        parts=lambda wc: DATA_PARTS[wc.data],
        mirrors=config["offline_mirrors"],
        home=ir_home(),
    script:
        "../workflow_scripts/download.py"


# Mining mode: one split for every run; one triples job per negative set (see negatives_set in common.smk).
if SETTINGS.train_data.docpairs is None:

    rule training_split:
        input:
            unpack(training_split_input),
        output:
            splits="results/train_data/splits.json",
            candidates="results/train_data/validation_candidates.tsv",
            stats="results/train_data/split_stats.json",
        log:
            "results/logs/training_split.log",
        benchmark:
            "results/benchmarks/training_split.tsv"
        conda:
            "../envs/data.yaml"
        params:
            spec=DATA_SPECS[TRAIN_COLLECTION],
            name=TRAIN_COLLECTION,
            settings=SETTINGS.train_data,
            home=ir_home(),
        script:
            "../workflow_scripts/training_split.py"

    rule training_data:
        input:
            unpack(training_triples_input),
        output:
            triples="results/train_data/{source}/triples.tsv",
            stats="results/train_data/{source}/stats.json",
        log:
            "results/logs/training_data/{source}.log",
        benchmark:
            "results/benchmarks/training_data/{source}.tsv"
        conda:
            "../envs/data.yaml"
        params:
            spec=DATA_SPECS[TRAIN_COLLECTION],
            name=TRAIN_COLLECTION,
            settings=SETTINGS.train_data,
            source=negatives_source,
            teacher_scores_file=teacher_scores_to_check,
            home=ir_home(),
        script:
            "../workflow_scripts/training_data.py"

else:

    # Docpairs mode: one job, since the split needs the docpairs' queries (the same rule name as the mining jobs, so
    # that the profiles' resources apply to either). With scored pairs (SCORED_PAIRS) it also writes the Margin-MSE
    # runs' triples from the published scores file, over the same split.
    rule training_data:
        input:
            unpack(training_split_input),
            **(
                {"scored_pairs": config["train_data"]["teacher_scores_file"]}
                if SCORED_PAIRS
                else {}
            ),
        output:
            splits="results/train_data/splits.json",
            candidates="results/train_data/validation_candidates.tsv",
            triples="results/train_data/docpairs/triples.tsv",
            stats="results/train_data/docpairs/stats.json",
            **(
                {
                    "scored_triples": f"results/train_data/{SCORED_SET}/triples.tsv",
                    "scored_stats": f"results/train_data/{SCORED_SET}/stats.json",
                }
                if SCORED_PAIRS
                else {}
            ),
        log:
            "results/logs/training_data/docpairs.log",
        benchmark:
            "results/benchmarks/training_data/docpairs.tsv"
        conda:
            "../envs/data.yaml"
        params:
            spec=DATA_SPECS[TRAIN_COLLECTION],
            name=TRAIN_COLLECTION,
            settings=SETTINGS.train_data,
            home=ir_home(),
        script:
            "../workflow_scripts/training_docpairs.py"
