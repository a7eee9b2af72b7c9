import os
import re
from dataclasses import replace
from pathlib import Path

import ir_datasets
from snakemake.utils import Paramspace, validate

from margin_retrieval.workflow import archive, checks

checks.drop_removed_collections(config)
# One line per problem first (Snakemake's own message dumps the whole schema); then the same schema fills defaults.
checks.check_schema(config, Path(workflow.basedir) / "schemas/config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml")

from margin_retrieval.workflow.config import (
    FirstStage,
    InBatch,
    Negatives,
    Objective,
    Settings,
    TeacherPairs,
)
from margin_retrieval.training.config import TrainConfig
from margin_retrieval.training.student import trained_similarity
from margin_retrieval.workflow.experiments import (
    GridDefaults,
    expand_experiments,
    run_name,
    training_budget,
)

# The typed view of the validated config (schema defaults filled in), built once; rules pass its sections on.
SETTINGS = Settings.from_config(config)
GRID_DEFAULTS = GridDefaults.from_settings(SETTINGS)
STUDENTS = (
    [config["student"]] if isinstance(config["student"], str) else config["student"]
)
# The grid, parsed once: RUNS maps each run's name (its Paramspace pattern) to its typed columns.
GRID = expand_experiments(
    config["experiments"], STUDENTS, GRID_DEFAULTS, config["group_training"]
)
RUNS = GRID.runs
TRAIN_SPACE = Paramspace(GRID.table.drop(columns="group"), param_sep="~")
MARGIN_MSE_RUNS = [run for run in RUNS.values() if run.objective == Objective.MARGIN_MSE]
COLLECTIONS = sorted(config["collections"])
# The collection the figures are drawn on: analysis.collection, else the first one the config lists.
FIGURE_COLLECTION = config["analysis"]["collection"] or next(iter(config["collections"]))
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
# A separate validation dataset (TREC DL 2019 for MS MARCO) is downloaded by the download rule like any collection.
VALIDATION_COLLECTION = "validation"
if config["train_data"]["validation"]["dataset"]:
    DATA_SPECS[VALIDATION_COLLECTION] = {
        "dataset": config["train_data"]["validation"]["dataset"]
    }
# What later jobs read of a collection beyond docs, queries and qrels, fetched by its download job (compute nodes may
# be offline): the training collection's docpairs in docpairs mode, the separate validation set's candidate lists.
DATA_PARTS = {name: [] for name in DATA_SPECS}
if SETTINGS.train_data.docpairs is not None:
    DATA_PARTS[TRAIN_COLLECTION] = ["docpairs"]
if VALIDATION_COLLECTION in DATA_SPECS:
    DATA_PARTS[VALIDATION_COLLECTION] = ["scoreddocs"]
SHARDS = config["retrieval"]["shards"]


def query_length(data):
    """Tokens a query of ``data`` is encoded with: a test collection's at retrieval.max_query_length (the original
    evaluation encodes at up to 200 tokens, beyond its training length), every other (training queries ranked for
    negatives) at the training length."""
    retrieval_length = config["retrieval"]["max_query_length"]
    if data in config["collections"] and retrieval_length is not None:
        return retrieval_length
    return config["training"]["max_query_length"]


def intermediate(path):
    """An output that only later jobs of the DAG read: temp() unless retrieval.keep_intermediate."""
    return path if config["retrieval"]["keep_intermediate"] else temp(path)


# Threads of every torch and faiss job. A small BERT keeps two threads only ~70% busy (CPU time / wall time of the
# default's train and encode jobs), so by default two jobs of half the cores each share the machine: 1.2x sooner on
# 2 cores (benchmarks/results/job_parallelism.txt).
JOB_THREADS = min(workflow.cores, config["threads_per_job"] or max(1, workflow.cores // 2))


def negatives_set(negatives, model):
    """The folder of a run's triples under results/train_data/: one per negative source, and for the student's own
    ranking one per student, since each model's negatives are mined with that model."""
    if Negatives(negatives) == Negatives.STUDENT:
        return f"student/{model}"
    return str(negatives)


# Margin-MSE runs with train_data.teacher_pairs: scored train on the pairs that the published scores file scores; the
# docpairs job writes them to results/train_data/scored/ (docs/cluster.md, "Published teacher scores").
SCORED_SET = "scored"
SCORED_PAIRS = bool(
    SETTINGS.train_data.teacher_pairs == TeacherPairs.SCORED
    and MARGIN_MSE_RUNS
)


def triples_set(objective, negatives, model):
    """The folder of a run's triples under results/train_data/: its negative set, or the scored pairs for
    Margin-MSE with train_data.teacher_pairs: scored."""
    if objective == "margin_mse" and SCORED_PAIRS:
        return SCORED_SET
    return negatives_set(negatives, model)


TRIPLE_SETS = sorted(
    {triples_set(run.objective, run.negatives, run.model) for run in RUNS.values()}
)
# The triple sets that Margin-MSE runs train on: each gets its teacher scores (rule score_teacher).
MARGIN_MSE_SETS = sorted(
    {
        triples_set(run.objective, run.negatives, run.model)
        for run in MARGIN_MSE_RUNS
    }
)


def corpus_of(name):
    """The document corpus behind a data name: collections that share their documents (TREC DL 2019, 2020 and MS
    MARCO dev share 8.8M passages; SciFact train and test share 5,183 abstracts) share one corpus encoding.
    """
    spec = DATA_SPECS[name]
    if "dataset" not in spec:
        return name  # local files: a corpus of its own
    try:
        parent = ir_datasets.docs_parent_id(spec["dataset"])
    except KeyError:
        raise checks.ConfigError(
            f"config: {name!r}: {spec['dataset']!r} is not an ir_datasets id "
            "(see https://ir-datasets.com for the catalogue, or give local docs/queries/qrels files)"
        ) from None
    return "--".join(parent.split(os.sep))  # a path-free name for the {corpus} wildcard


CORPUS_OF = {name: corpus_of(name) for name in DATA_SPECS}
# The data name whose download provides each corpus (its manifest is what the encoder waits for).
CORPUS_SOURCE = {}
for _name, _corpus in CORPUS_OF.items():
    CORPUS_SOURCE.setdefault(_corpus, _name)


def check_config():
    """Cross-key checks the JSON schema cannot express; they fail before any job starts."""
    for key in [*STUDENTS, *config["zeroshot"], *filter(None, [config["teacher"]])]:
        if key not in config["models"]:
            raise checks.ConfigError(
                f"config: model {key!r} (student/teacher/zeroshot) is not defined under 'models'"
            )
    if MARGIN_MSE_RUNS and not (
        config["teacher"] or config["train_data"]["teacher_scores_file"]
    ):
        raise checks.ConfigError(
            "config: 'teacher' must name a model (or train_data.teacher_scores_file give published scores) "
            "because a margin_mse run is configured"
        )
    for reserved in (TRAIN_COLLECTION, VALIDATION_COLLECTION):
        if reserved in config["collections"]:
            raise checks.ConfigError(f"config: collection name {reserved!r} is reserved")
    for name in config["collections"]:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise checks.ConfigError(
                f"config: collection name {name!r} may only use letters, digits, '-' and '_'"
            )
    references = {run.objective.value for run in RUNS.values() if run.in_batch == InBatch.OFF}
    references |= {f"zeroshot/{model}" for model in config["zeroshot"]}
    references |= {f"trained/{pattern}" for pattern in TRAIN_SPACE.instance_patterns}
    used_models = {*STUDENTS, *config["zeroshot"], *filter(None, [config["teacher"]])}
    checks.check_values(
        config, references, used_models, bool(MARGIN_MSE_RUNS)
    )


check_config()


wildcard_constraints:
    collection="|".join(map(re.escape, COLLECTIONS)) if COLLECTIONS else "^$",
    data="[A-Za-z0-9_-]+",
    corpus="|".join(map(re.escape, CORPUS_SOURCE)),
    model="|".join(map(re.escape, config["models"])),
    system="zeroshot/[^/]+|trained/.+",
    source="|".join(map(re.escape, TRIPLE_SETS)),


scattergather:
    shard=SHARDS,


def ir_home():
    return config["ir_datasets_home"]


def trained_systems():
    return [f"trained/{pattern}" for pattern in TRAIN_SPACE.instance_patterns]


# Runs already trained and archived (config `archive`): the analysis reads their files from the archive, and since
# nothing asks for their model, the DAG does not train, encode or evaluate them again.
ARCHIVED_RUNS = {
    pattern
    for pattern in TRAIN_SPACE.instance_patterns
    if config["archive"]
    and archive.is_archived(config["archive"], pattern, COLLECTIONS)
}


# The CPU each archived run was trained on (the archive's runs.tsv); a run trained here logs its own.
ARCHIVED_CPUS = archive.run_cpus(config["archive"]) if config["archive"] else {}


def result_file(system, name):
    """``results/<name>`` of a system, or of an archived run the copy in the archive."""
    kind, _, run = system.partition("/")
    archived = kind == "trained" and run in ARCHIVED_RUNS
    return f"{config['archive'] if archived else 'results'}/{name}"


def precision_input(wildcards):
    """For `precision: auto`, the measured choice of this CPU (rule cpu_precision) that every torch job reads."""
    if config["training"]["precision"] != "auto":
        return {}
    return {"precision": "results/precision.json"}


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


def summary_train_log(wildcards):
    """A trained system's training log (its best validation value goes into the summary)."""
    kind, _, rest = wildcards.system.partition("/")
    if kind != "trained":
        return {}
    return {"train_log": result_file(wildcards.system, archive.train_log(rest))}


def summary_aggregate(wildcards):
    return result_file(
        wildcards.system,
        archive.evaluation(wildcards.collection, wildcards.system, "json"),
    )


def same_weights_reference(wildcards):
    """For a trained system whose base model is also a zero-shot system: that base model and the zero-shot encoding
    of the same texts. A run that kept its untrained model exports those weights unchanged and copies the encoding
    instead of repeating it (workflow_scripts/encode.py); any other run encodes as usual."""
    kind, _, rest = wildcards.system.partition("/")
    if kind != "trained":
        return {}
    model = RUNS[rest].model
    if model not in config["zeroshot"]:
        return {}
    system = f"zeroshot/{model}"
    if "corpus" in wildcards.keys():
        reference = corpus_shard_files(system, wildcards.corpus)
    else:
        reference = [f"results/embeddings/{system}/{wildcards.data}/queries.npz"]
    return {"reference_model": f"results/models/{model}", "reference": reference}


def corpus_shard_files(system, corpus):
    """The encoded document shards of ``corpus`` under ``system``, in shard order."""
    return gather.shard(f"results/embeddings/{system}/corpus/{corpus}/docs-{{scatteritem}}.npz")


def corpus_shards(wildcards):
    """The encoded document shards that a collection's search reads, one after the other."""
    return corpus_shard_files(wildcards.system, CORPUS_OF[wildcards.collection])


def run_tag(wildcards):
    """The run tag of a system: its name with every path separator turned into '_', a single TREC token."""
    return "_".join(wildcards.system.split(os.sep))


def system_description(system):
    """Experiment columns of a system, for the results table and the figures."""
    kind, _, rest = system.partition("/")
    if kind == "zeroshot":
        return {"system": system, "kind": "zeroshot", "model": rest}
    return {"system": system, "kind": "trained", **RUNS[rest].description()}


def run_of(wildcards):
    """The typed run of a train job's wildcards."""
    return RUNS[run_name(TRAIN_SPACE.instance(wildcards))]


def train_logs():
    return [
        result_file(f"trained/{pattern}", archive.train_log(pattern))
        for pattern in TRAIN_SPACE.instance_patterns
    ]


def train_benchmarks():
    """The training jobs' benchmark files: their CPU time is the speed-up figure's seconds."""
    return [
        result_file(f"trained/{pattern}", archive.train_benchmark(pattern))
        for pattern in TRAIN_SPACE.instance_patterns
    ]


def eval_files(suffix):
    return [
        result_file(system, archive.evaluation(collection, system, suffix))
        for collection in COLLECTIONS
        for system in all_systems()
    ]


def student_ranking(model):
    """The zero-shot student's ranking of the training queries, written by rank_training_queries; a first stage
    of its own."""
    return {"student_ranking": f"results/train_data/student/{model}/ranking.tsv"}


def training_split_input(wildcards):
    """The training collection's manifest, a separate validation dataset's, and the first student's ranking if it
    ranks the validation candidates (one candidate set for every run, so validation values compare).
    """
    inputs = {"manifest": f"results/data/{TRAIN_COLLECTION}/manifest.json"}
    if VALIDATION_COLLECTION in DATA_SPECS:
        inputs["validation_manifest"] = (
            f"results/data/{VALIDATION_COLLECTION}/manifest.json"
        )
    elif SETTINGS.train_data.validation.candidates == FirstStage.STUDENT:
        inputs |= student_ranking(STUDENTS[0])
    return inputs


def training_triples_input(wildcards):
    """The split, and the student's ranking when it gives the negatives."""
    inputs = {
        "manifest": f"results/data/{TRAIN_COLLECTION}/manifest.json",
        "splits": "results/train_data/splits.json",
    }
    kind, _, model = wildcards.source.partition("/")
    return inputs | (student_ranking(model) if kind == Negatives.STUDENT else {})


def negatives_source(wildcards):
    return FirstStage(wildcards.source.partition("/")[0])


def run_triples(wildcards):
    """The triples of a run: its negative source's, or the scored pairs (``triples_set``)."""
    source = triples_set(wildcards.objective, wildcards.negatives, wildcards.model)
    return f"results/train_data/{source}/triples.tsv"


def run_training(run):
    """The ``training`` section as one run of the grid trains under it: with its groups' ``group_training``."""
    return replace(SETTINGS.training, **GRID.training[run.name])


def train_config_of(run):
    """The training settings of one run of the grid."""
    return TrainConfig.from_config(run_training(run), run.description())


def untrained_validation_input(wildcards):
    """The student's untrained validation, computed once (rule validate_untrained) and logged by each of its runs as
    step 0. A config that trains on CUDA validates step 0 in each run, in the run's own precision."""
    if config["training"]["device"] == "cuda":
        return {}
    run = run_of(wildcards)
    similarity = trained_similarity(train_config_of(run))
    return {"untrained": f"results/train_data/untrained_validation/{run.model}/{similarity}.json"}


def untrained_validation_run(wildcards):
    """A grid run of the student that scores with this similarity: its step 0 is that of every such run."""
    for run in RUNS.values():
        if run.model == wildcards.model and trained_similarity(train_config_of(run)) == wildcards.similarity:
            return run.description()
    raise ValueError(f"no run of {wildcards.model} scores with {wildcards.similarity}")


def teacher_scores_to_check(wildcards):
    """The published scores file that Margin-MSE runs read for this negative set's triples: the triples job checks
    that it scores every triple, so a missing score stops the workflow before any training. None otherwise."""
    scores_file = config["train_data"]["teacher_scores_file"]
    return scores_file if scores_file and wildcards.source in MARGIN_MSE_SETS else None


def teacher_model_input(wildcards):
    """The teacher model, unless published teacher scores are read from a file."""
    if config["train_data"]["teacher_scores_file"]:
        return []
    return f"results/models/{config['teacher']}"


def teacher_scores_input(wildcards):
    if wildcards.objective != "margin_mse":
        return []
    source = triples_set(wildcards.objective, wildcards.negatives, wildcards.model)
    return [f"results/train_data/{source}/teacher_scores.tsv"]


def systems_manifest():
    """One record per collection x system for results/systems.json: its experiment columns and the paths of its
    evaluation files (and, for a trained system, of its training log and benchmark; for an archived run, the CPU it
    trained on)."""
    records = []
    for collection in COLLECTIONS:
        for system in all_systems():
            record = {"collection": collection, **system_description(system)}
            record["aggregate"] = result_file(
                system, archive.evaluation(collection, system, "json")
            )
            record["per_query"] = result_file(
                system, archive.evaluation(collection, system, "tsv")
            )
            if record["kind"] == "trained":
                run = system.partition("/")[2]
                record["train_log"] = result_file(system, archive.train_log(run))
                record["train_benchmark"] = result_file(
                    system, archive.train_benchmark(run)
                )
                if run in ARCHIVED_RUNS:
                    record["cpu"] = ARCHIVED_CPUS.get(run, "")
            records.append(record)
    return records


def clusters_input(wildcards):
    """The cluster of every training triple, for a run with clustered batching."""
    if wildcards.batching != "clustered":
        return []
    source = triples_set(wildcards.objective, wildcards.negatives, wildcards.model)
    return [
        f"results/train_data/{source}/clusters/{wildcards.model}/fraction~{wildcards.fraction}.tsv"
    ]


def zeroshot_embeddings_of_training_data(wildcards):
    """The zero-shot student's encodings of the training queries and of the corpus (where the positives are)."""
    system = f"zeroshot/{wildcards.model}"
    corpus = CORPUS_OF[TRAIN_COLLECTION]
    return {
        "queries": f"results/embeddings/{system}/{TRAIN_COLLECTION}/queries.npz",
        "docs": corpus_shard_files(system, corpus),
    }


def teacher_benchmark():
    """Teacher scoring is part of Margin-MSE's cost in the speed-up comparison: one job per triple set."""
    return [
        f"results/benchmarks/score_teacher/{source}.tsv" for source in MARGIN_MSE_SETS
    ]


FIGURES = [
    "tau",
    "data_efficiency",
    "training_curves",
    "speedup",
    "targets",
    "per_query",
    "negatives",
    "batching",
]


def figures_path(name):
    """A table or figure in the folder of config ``figures`` (``figures/`` unless a grid keeps its own)."""
    return Path(config["figures"], name).as_posix()


# Tables the report shows as HTML pages (it offers .md and .tsv files only as downloads): page name -> source file.
REPORT_TABLES = {
    "main_table": figures_path("main_table.md"),
    "claims": figures_path("claims.md"),
    "results": figures_path("results.tsv"),
    "speedup": figures_path("speedup.tsv"),
    "training_summary": figures_path("training_summary.tsv"),
}

TABLE_TITLES = {
    "main_table": "Main results with significance and equivalence tests",
    "claims": "The paper's claims: holds, does not hold or cannot tell, against the seed noise",
    "results": "Every evaluation result (long form)",
    "speedup": "The numbers behind the speed-up figure",
    "training_summary": "How each training run ended, with its best validation and test nDCG@10",
}


def all_targets():
    return [
        figures_path("results.tsv"),
        *[
            f"results/summaries/{collection}/{system}.json"
            for collection in COLLECTIONS
            for system in all_systems()
        ],
        figures_path("main_table.md"),
        figures_path("validation_agreement.json"),
        *[figures_path(f"{figure}.png") for figure in FIGURES],
        *[figures_path(f"report/{table}.html") for table in REPORT_TABLES],
    ]
