rule systems_manifest:
    output:
        "results/systems.json",
    log:
        "results/logs/systems_manifest.log",
    benchmark:
        "results/benchmarks/systems_manifest.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        systems=systems_manifest(),
        negatives_default=config["train_data"]["negatives"]["source"],
    script:
        "../workflow_scripts/systems_manifest.py"


rule collect_results:
    input:
        manifest="results/systems.json",
        aggregates=eval_files("json"),
    output:
        figures_path("results.tsv"),
    log:
        "results/logs/collect_results.log",
    benchmark:
        "results/benchmarks/collect_results.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/collect_results.py"


rule tables:
    input:
        manifest="results/systems.json",
        results=figures_path("results.tsv"),
        per_query=eval_files("tsv"),
    output:
        markdown=figures_path("main_table.md"),
        latex=figures_path("main_table.tex"),
        tsv=figures_path("main_table.tsv"),
    log:
        "results/logs/tables.log",
    benchmark:
        "results/benchmarks/tables.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        analysis=config["analysis"],
        measures={
            name: collection.get("measures")
            for name, collection in config["collections"].items()
        },
    script:
        "../workflow_scripts/tables.py"


rule claims:
    input:
        results=figures_path("results.tsv"),
        speedup=figures_path("speedup.json"),
    output:
        markdown=figures_path("claims.md"),
        tsv=figures_path("claims.tsv"),
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        analysis=config["analysis"],
        negatives=config["train_data"]["negatives"]["source"],
        student=STUDENTS[0],
        collections=list(config["collections"]),
    script:
        "../workflow_scripts/claims.py"


rule training_summary:
    input:
        manifest="results/systems.json",
        results=figures_path("results.tsv"),
        logs=train_logs(),
    output:
        tsv=figures_path("training_summary.tsv"),
        json=figures_path("validation_agreement.json"),
        noise=figures_path("validation_noise.tsv"),
        learning_rates=figures_path("learning_rates.tsv"),
    log:
        "results/logs/training_summary.log",
    benchmark:
        "results/benchmarks/training_summary.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/training_summary.py"


rule figure_tau:
    input:
        results=figures_path("results.tsv"),
    output:
        png=report(
            figures_path("tau.png"),
            caption="report/figure_tau.rst",
            category="Figures",
        ),
        pdf=figures_path("tau.pdf"),
    log:
        "results/logs/figures/tau.log",
    benchmark:
        "results/benchmarks/figures/tau.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        figure="tau",
        analysis=config["analysis"],
        collection=FIGURE_COLLECTION,
    script:
        "../workflow_scripts/figure.py"


rule figure_data_efficiency:
    input:
        results=figures_path("results.tsv"),
    output:
        png=report(
            figures_path("data_efficiency.png"),
            caption="report/figure_data_efficiency.rst",
            category="Figures",
        ),
        pdf=figures_path("data_efficiency.pdf"),
        json=figures_path("data_efficiency.json"),
    log:
        "results/logs/figures/data_efficiency.log",
    benchmark:
        "results/benchmarks/figures/data_efficiency.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        figure="data_efficiency",
        analysis=config["analysis"],
        collection=FIGURE_COLLECTION,
        budget=training_budget(
            config["training"]["max_epochs"], config["training"]["max_steps"]
        ),
        student=STUDENTS[0],
        teacher=config["teacher"],
    script:
        "../workflow_scripts/figure.py"


rule figure_from_logs:
    input:
        manifest="results/systems.json",
        logs=train_logs(),
    output:
        png=report(
            figures_path("{figure}.png"),
            caption="report/figure_from_logs.rst",
            category="Figures",
        ),
        pdf=figures_path("{figure}.pdf"),
    log:
        "results/logs/figures/{figure}.log",
    benchmark:
        "results/benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure="training_curves|targets",
    conda:
        "../envs/analysis.yaml"
    params:
        figure=lambda wc: wc.figure,
        analysis=config["analysis"],
    script:
        "../workflow_scripts/figure.py"


rule figure_speedup:
    input:
        manifest="results/systems.json",
        logs=train_logs(),
        train_benchmarks=train_benchmarks(),
        teacher_benchmark=teacher_benchmark(),
    output:
        png=report(
            figures_path("speedup.png"),
            caption="report/figure_speedup.rst",
            category="Figures",
        ),
        pdf=figures_path("speedup.pdf"),
        json=figures_path("speedup.json"),
        tsv=figures_path("speedup.tsv"),
    log:
        "results/logs/figures/speedup.log",
    benchmark:
        "results/benchmarks/figures/speedup.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        figure="speedup",
        analysis=config["analysis"],
    script:
        "../workflow_scripts/figure.py"


rule figure_per_query:
    input:
        manifest="results/systems.json",
        per_query=eval_files("tsv"),
    output:
        png=report(
            figures_path("per_query.png"),
            caption="report/figure_per_query.rst",
            category="Figures",
        ),
        pdf=figures_path("per_query.pdf"),
    log:
        "results/logs/figures/per_query.log",
    benchmark:
        "results/benchmarks/figures/per_query.tsv"
    conda:
        "../envs/analysis.yaml"
    params:
        figure="per_query",
        analysis=config["analysis"],
        collection=FIGURE_COLLECTION,
    script:
        "../workflow_scripts/figure.py"


rule figure_column_comparison:
    input:
        manifest="results/systems.json",
        results=figures_path("results.tsv"),
        logs=train_logs(),
    output:
        png=report(
            figures_path("{figure}.png"),
            caption="report/figure_column_comparison.rst",
            category="Figures",
        ),
        pdf=figures_path("{figure}.pdf"),
        tsv=figures_path("{figure}.tsv"),
    log:
        "results/logs/figures/{figure}.log",
    benchmark:
        "results/benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure="negatives|batching",
    conda:
        "../envs/analysis.yaml"
    params:
        figure=lambda wc: wc.figure,
        analysis=config["analysis"],
        collection=FIGURE_COLLECTION,
    script:
        "../workflow_scripts/figure.py"


rule report_table:
    input:
        lambda wc: REPORT_TABLES[wc.table],
    output:
        report(
            figures_path("report/{table}.html"),
            caption="report/tables.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    log:
        "results/logs/report_table/{table}.log",
    benchmark:
        "results/benchmarks/report_table/{table}.tsv"
    wildcard_constraints:
        table="|".join(REPORT_TABLES),
    conda:
        "../envs/analysis.yaml"
    params:
        title=lambda wc: TABLE_TITLES[wc.table],
    script:
        "../workflow_scripts/report_table.py"
