import os
import re
from pathlib import Path

from snakemake.utils import Paramspace, validate

validate(config, schema="../schemas/config.schema.yaml")

# Jobs (local, conda or cluster) import the package from this checkout.
# (An assignment, not a variable the user must provide, so there is nothing for an envvars directive to assert.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])
    )
)

from margin_retrieval.experiments import expand_experiments, run_description

STUDENTS = (
    [config["student"]] if isinstance(config["student"], str) else config["student"]
)
RUNS = expand_experiments(config["experiments"], STUDENTS)
TRAIN_SPACE = Paramspace(RUNS.drop(columns="group"), param_sep="~")
COLLECTIONS = sorted(config["collections"])
# The training collection gets its own data-rule name; "train" never clashes with an evaluation collection.
TRAIN_COLLECTION = "train"
TRAIN_SPEC_KEYS = ("dataset", "docs", "queries", "qrels", "docs_format")
DATA_SPECS = {
    TRAIN_COLLECTION: {
        key: value
        for key, value in config["train_data"].items()
        if key in TRAIN_SPEC_KEYS
    }
} | {name: config["collections"][name] for name in COLLECTIONS}
SHARDS = config["retrieval"]["shards"]


def check_config():
    """Cross-key checks the JSON schema cannot express; they fail before any job starts."""
    for key in [*STUDENTS, *config["zeroshot"], *filter(None, [config["teacher"]])]:
        if key not in config["models"]:
            raise ValueError(
                f"config: model {key!r} (student/teacher/zeroshot) is not defined under 'models'"
            )
    if (RUNS["objective"] == "margin_mse").any() and not config["teacher"]:
        raise ValueError(
            "config: 'teacher' must name a model because a margin_mse run is configured"
        )
    if TRAIN_COLLECTION in config["collections"]:
        raise ValueError(f"config: collection name {TRAIN_COLLECTION!r} is reserved")
    for name in config["collections"]:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(
                f"config: collection name {name!r} may only use letters, digits, '-' and '_'"
            )


check_config()


wildcard_constraints:
    collection="|".join(map(re.escape, COLLECTIONS)) if COLLECTIONS else "^$",
    data="[A-Za-z0-9_-]+",
    model="|".join(map(re.escape, config["models"])),
    system="zeroshot/[^/]+|trained/.+",
    scatteritem=r"\d+-of-\d+",


scattergather:
    shard=SHARDS,


def ir_home():
    return config["ir_datasets_home"]


def trained_systems():
    return [f"trained/{pattern}" for pattern in TRAIN_SPACE.instance_patterns]


def zeroshot_systems():
    return [f"zeroshot/{model}" for model in config["zeroshot"]]


def all_systems():
    return zeroshot_systems() + trained_systems()


def system_model_dir(wildcards):
    """The model directory behind a system name: a prepared base model or a trained run's output."""
    kind, _, rest = wildcards.system.partition("/")
    if kind == "zeroshot":
        return f"results/models/{rest}"
    return f"results/train/{rest}/model"


def run_tag(wildcards):
    """The run tag of a system: its name with every path separator turned into '_', a single TREC token."""
    return "_".join(wildcards.system.split(os.sep))


def system_description(system):
    """Experiment columns of a system, for the results table and the figures."""
    kind, _, rest = system.partition("/")
    if kind == "zeroshot":
        return {"system": system, "kind": "zeroshot", "model": rest}
    row = dict(part.split("~", 1) for part in rest.split("/"))
    return {"system": system, "kind": "trained", **run_description(row)}


def run_rows():
    """The training runs as typed dicts, aligned with ``train_logs()``."""
    return [
        {"run": pattern, **run_description(row)}
        for pattern, row in zip(TRAIN_SPACE.instance_patterns, RUNS.to_dict("records"))
    ]


def train_logs():
    return [
        f"results/train/{pattern}/train_log.jsonl"
        for pattern in TRAIN_SPACE.instance_patterns
    ]


def eval_files(suffix):
    return [
        f"results/eval/{collection}/{system}.{suffix}"
        for collection in COLLECTIONS
        for system in all_systems()
    ]


def training_params():
    return config["training"]


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


def teacher_scores_input(wildcards):
    return (
        ["results/train_data/teacher_scores.tsv"]
        if wildcards.objective == "margin_mse"
        else []
    )


def systems_with_collection():
    """Experiment columns of every evaluated system, aligned with ``eval_files``."""
    return [
        {**system_description(system), "collection": collection}
        for collection in COLLECTIONS
        for system in all_systems()
    ]


def teacher_benchmark():
    """Teacher scoring is part of Margin-MSE's cost in the speed-up comparison."""
    has_margin_mse = (RUNS["objective"] == "margin_mse").any()
    return ["results/benchmarks/score_teacher.tsv"] if has_margin_mse else []


FIGURES = [
    "tau",
    "data_efficiency",
    "training_curves",
    "speedup",
    "targets",
    "per_query",
]


def all_targets():
    return [
        "figures/results.tsv",
        "figures/main_table.md",
        *[f"figures/{figure}.png" for figure in FIGURES],
    ]
