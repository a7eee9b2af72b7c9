"""The paper's DAG (config/paper.yaml) run for real, offline, on an MS MARCO-shaped collection: every rule from the
downloads of the msmarco-passage ids to the figures, then a subset once more through profiles/slurm with a fake
one-node SLURM.

What stays the paper's: the ir_datasets ids (msmarco-passage/train with its docpairs, TREC DL 2019/2020 judged, dev
small; tests/msmarco_shaped.py writes them where ir_datasets expects the downloads), validation re-ranking TREC DL
2019's top-1000, the published teacher scores file, the hub ids of the three encoders (tiny random models in a hub
cache, tests/tiny_hub.py), the measures and the analysis. tests/paper_tiny.yaml shrinks the rest.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from tests.msmarco_shaped import OFFLINE_ENV, write_msmarco_passage, write_teacher_scores
from tests.test_cluster import expected_jobs, job_stats
from tests.tiny_hub import PAPER_MODELS, make_hub_cache

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
PAPER = REPO / "config" / "paper.yaml"
OVERLAY = REPO / "tests" / "paper_tiny.yaml"
CONFIG_FILES = ["--configfile", str(PAPER), str(OVERLAY)]
# Rules of other configurations: mined negatives (training_split, rank_training_queries, cluster_training_data) and
# precision "auto".
NOT_IN_PAPER_DAG = {"training_split", "rank_training_queries", "cluster_training_data", "cpu_precision"}
GPU_RULES = ("train", "score_teacher", "encode_docs", "encode_queries")


def merged_config() -> dict:
    """config/paper.yaml with the overlay merged in as Snakemake merges config files (mappings key by key)."""
    config = yaml.safe_load(PAPER.read_text())
    update_config(config, yaml.safe_load(OVERLAY.read_text()))
    return config


CONFIG = merged_config()


def run_snakemake(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Snakemake in ``workdir`` on both config files, given last: --configfile would swallow a target after it."""
    result = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args, *CONFIG_FILES], capture_output=True,
                            text=True, env=env, cwd=workdir)
    assert result.returncode == 0, \
        f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return result


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """The whole DAG in a fresh run directory, as docs/cluster.md sets one up: the ir_datasets cache and the
    published teacher scores under resources/, where config/paper.yaml points."""
    root = tmp_path_factory.mktemp("paper")
    workdir = root / "run"
    collection = write_msmarco_passage(workdir / CONFIG["ir_datasets_home"])
    write_teacher_scores(workdir / CONFIG["train_data"]["teacher_scores_file"], collection.docpairs)
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(make_hub_cache(root / "hf"))}
    for key in ("SLURM_JOB_ID", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):  # inside a job; a cache other than HF_HOME's
        env.pop(key, None)
    result = run_snakemake(workdir, env, "--cores", "2")
    return workdir, collection, env, result.stdout + result.stderr


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def trained_systems(workdir: Path) -> set[str]:
    return {f"trained/{log.parent.relative_to(workdir / 'results/train')}"
            for log in (workdir / "results/train").rglob("train_log.jsonl")}


def test_every_rule_of_the_paper_dag_runs(paper_run):
    workdir, _, _, output = paper_run
    counts = job_stats(output)
    total = counts.pop("total")
    defined = set()
    for path in (REPO / "rules").glob("*.smk"):
        defined |= set(re.findall(r"^\s*rule (\w+):", path.read_text(), re.M))
    assert set(counts) == defined - NOT_IN_PAPER_DAG | {"all"}
    for rule, expected in expected_jobs(CONFIG).items():
        assert counts.get(rule, 0) == expected, f"{rule}: {counts.get(rule)} jobs, expected {expected}"
    assert counts["train"] == 4 and counts["download"] == 5 and counts["prepare_model"] == 3
    assert f"{total} of {total} steps (100%) done" in output


def test_results_tables_and_figures_hold_one_row_per_run(paper_run):
    workdir, _, _, _ = paper_run
    systems = trained_systems(workdir)
    assert len(systems) == 4
    rows = read_rows(workdir / "figures/results.tsv")
    for name, collection in CONFIG["collections"].items():
        measures = {(row["system"], row["measure"]) for row in rows if row["collection"] == name}
        assert measures == {(system, measure) for system in systems for measure in collection["measures"]}, name
    assert {row["objective"] for row in rows} == {"static", "adaptive", "distributed", "margin_mse"}
    main = read_rows(workdir / "figures/main_table.tsv")
    assert sorted(row["collection"] for row in main) == sorted(list(CONFIG["collections"]) * 4)
    assert {row["system"].removeprefix("trained/") for row in read_rows(workdir / "figures/training_summary.tsv")} \
        == {system.removeprefix("trained/") for system in systems}
    for figure in ("tau", "data_efficiency", "training_curves", "speedup", "targets", "per_query", "negatives",
                   "batching"):
        for suffix in ("png", "pdf"):
            assert (workdir / "figures" / f"{figure}.{suffix}").stat().st_size > 0, (figure, suffix)
    agreement = json.loads((workdir / "figures/validation_agreement.json").read_text())
    assert agreement["n_runs"] == 4 and set(agreement["collections"]) == set(CONFIG["collections"])


def test_trec_runs_rank_the_judged_queries_of_the_three_collections(paper_run):
    workdir, collection, _, _ = paper_run
    corpus = set(collection.passages)
    for name in CONFIG["collections"]:
        runs = sorted((workdir / "results/runs" / name).rglob("*.trec"))
        assert {str(run.relative_to(workdir / "results/runs" / name).with_suffix("")) for run in runs} \
            == trained_systems(workdir), name
        for run in runs:
            by_query: dict[str, list[str]] = {}
            for line in run.read_text().splitlines():
                qid, _, pid, _, _, _ = line.split()
                by_query.setdefault(qid, []).append(pid)
            assert set(by_query) == set(collection.judged[name]), (name, run)  # the /judged subsets' queries
            # depth 1000 on a 288-passage corpus: every passage once, none invented
            assert all(len(pids) == len(set(pids)) == len(corpus) and set(pids) == corpus for pids in by_query.values())


def test_docpairs_become_the_first_per_query_pairs_of_each_complete_query(paper_run):
    workdir, collection, _, _ = paper_run
    per_query = CONFIG["train_data"]["docpairs"]["per_query"]
    assert per_query < 128 and CONFIG["train_data"]["docpairs"]["drop_incomplete"]
    triples = [(row["qid"], row["pos_id"], row["neg_id"]) for row in
               read_rows(workdir / "results/train_data/docpairs/triples.tsv")]
    complete = {qid for qid, count in collection.pairs_per_query.items() if count >= per_query}
    assert max(collection.pairs_per_query.values()) > 128 and min(collection.pairs_per_query.values()) < per_query
    expected = {qid: [pair for pair in collection.docpairs if pair[0] == qid][:per_query] for qid in complete}
    by_query: dict[str, list[tuple[str, str, str]]] = {}
    for triple in triples:
        by_query.setdefault(triple[0], []).append(triple)
    assert by_query == expected
    splits = json.loads((workdir / "results/train_data/splits.json").read_text())
    # teacher_pairs: scored (paper.yaml): Margin-MSE's scored pairs keep their short queries, and one query order
    # covers both sets, so every query of a scored pair (here every docpairs query) is in it too.
    scored = {line.split()[2] for line in (workdir / CONFIG["train_data"]["teacher_scores_file"]).read_text()
              .splitlines()}
    assert CONFIG["train_data"]["teacher_pairs"] == "scored" and not complete >= scored
    assert sorted(splits["train_order"]) == sorted(complete | scored)


def test_validation_reranks_the_trec_dl_2019_top_1000_during_training(paper_run):
    workdir, collection, _, _ = paper_run
    splits = json.loads((workdir / "results/train_data/splits.json").read_text())
    assert sorted(splits["validation"]) == sorted(collection.judged["trec-dl-2019"])
    home = workdir / CONFIG["ir_datasets_home"] / "msmarco-passage"
    official = {tuple(line.split("\t")) for line in (home / "trec-dl-2019/ms.run").read_text().splitlines()}
    candidates = {(row["qid"], row["doc_id"]) for row in
                  read_rows(workdir / "results/train_data/validation_candidates.tsv")}
    assert candidates == {(qid, pid) for qid, pid in official if qid in set(splits["validation"])}
    for log in (workdir / "results/train").rglob("train_log.jsonl"):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert sum(event["event"] == "validation" for event in events) >= 2, log
        assert events[-1]["event"] == "end"


def test_sweep_groups_train_without_early_stopping_and_final_runs_with_it(paper_run):
    """group_training: the sweeps (exp1-exp3) never stop early; exp4 does; every run exports its last model."""
    workdir, _, _, _ = paper_run
    for objective, early_stopping in (("static", False), ("adaptive", False), ("distributed", False),
                                      ("margin_mse", True)):
        card = next((workdir / "results/train").glob(f"*/objective~{objective}/**/model/README.md")).read_text()
        assert f"early_stopping {early_stopping}," in card and "export last" in card, objective


def test_test_queries_are_encoded_at_200_tokens_and_training_queries_at_20(paper_run):
    workdir, _, _, _ = paper_run
    logs = list((workdir / "results/logs/encode_queries").rglob("*.log"))
    assert {log.stem for log in logs} == set(CONFIG["collections"])
    for log in logs:
        assert re.search(r"\d+ queries encoded at up to 200 tokens", log.read_text()), log
    for card in (workdir / "results/train").rglob("model/README.md"):
        assert "max_query_length 20," in card.read_text(), card


def test_margin_mse_reads_the_published_teacher_scores(paper_run):
    workdir, _, _, _ = paper_run
    published = {}
    for line in (workdir / CONFIG["train_data"]["teacher_scores_file"]).read_text().splitlines():
        score_pos, score_neg, qid, pos, neg = line.split("\t")
        published[(qid, pos, neg)] = (float(score_pos), float(score_neg))
    # teacher_pairs: scored: Margin-MSE trains on the pairs the file scores (results/train_data/scored)
    triples = read_rows(workdir / "results/train_data/scored/triples.tsv")
    scores = read_rows(workdir / "results/train_data/scored/teacher_scores.tsv")
    assert [(r["qid"], r["pos_id"], r["neg_id"]) for r in scores] == [(r["qid"], r["pos_id"], r["neg_id"])
                                                                      for r in triples]
    for row in scores:
        assert (float(row["teacher_pos"]), float(row["teacher_neg"])) == published[(row["qid"], row["pos_id"],
                                                                                    row["neg_id"])]
    run = next((workdir / "results/train").glob("model~distilbert/objective~margin_mse/**/model"))
    assert json.loads((run / "margin_retrieval.json").read_text())["similarity"] == "dot"  # against logits


def test_models_are_prepared_from_their_hub_ids(paper_run):
    workdir, _, _, _ = paper_run
    architectures = {"distilbert": "DistilBertModel", "mpnet": "MPNetModel", "roberta": "RobertaModel"}
    for name, spec in CONFIG["models"].items():
        model = workdir / "results/models" / name
        assert json.loads((model / "config.json").read_text())["architectures"] == [architectures[name]]
        assert PAPER_MODELS[spec["source"]] == name
        assert json.loads((model / "margin_retrieval.json").read_text())["pooling"] == spec["pooling"]
        assert spec["source"] in (model / "README.md").read_text()


def test_download_fetched_no_top_1000_run_that_nothing_reads(paper_run):
    workdir, _, _, _ = paper_run
    home = workdir / CONFIG["ir_datasets_home"] / "msmarco-passage"
    assert not (home / "train/ms.run").exists() and not (home / "dev/ms.run").exists()
    assert (home / "collection.tsv.pklz4").is_dir()  # the docstore, built once by the downloads
    manifests = {path.parent.name: json.loads(path.read_text())
                 for path in (workdir / "results/data").glob("*/manifest.json")}
    assert {name: m["dataset_id"] for name, m in manifests.items()} == {
        "train": "msmarco-passage/train", "validation": "msmarco-passage/trec-dl-2019/judged",
        **{name: spec["dataset"] for name, spec in CONFIG["collections"].items()}}
    assert {m["docs"] for m in manifests.values()} == {288}


def test_corpus_embeddings_and_top_k_files_are_deleted_once_the_runs_are_written(paper_run):
    workdir, _, _, _ = paper_run
    assert CONFIG["retrieval"]["keep_intermediate"] is False
    assert list((workdir / "results/runs").rglob("*.trec"))
    assert not list((workdir / "results/embeddings").rglob("docs-*.npz"))
    assert not list((workdir / "results/search").rglob("topk.npz"))
    assert list((workdir / "results/embeddings").rglob("queries.npz"))  # small, and read by every run's writer


def test_rerun_is_up_to_date(paper_run):
    workdir, _, env, _ = paper_run
    result = run_snakemake(workdir, env, "--dry-run", "--quiet", "rules")
    assert "Nothing to be done" in result.stdout + result.stderr


# --- through profiles/slurm ------------------------------------------------------------------------------------------

FAKE_SLURM = """#!{python}
# A one-node SLURM: sbatch runs the wrapped job before it answers, sacct/squeue report how it ended, srun runs its
# command; every call is recorded.
import fcntl, os, subprocess, sys
from pathlib import Path

command, args = Path(sys.argv[0]).name, sys.argv[1:]
state = Path(os.environ["FAKE_SLURM_DIR"])
with open(state / "calls.txt", "a") as calls:
    calls.write(" ".join([command, *args]) + "\\n")


def option(name, default=None):
    return args[args.index(name) + 1] if name in args else default


if command == "sbatch":
    with open(state / "jobs.txt", "a+") as jobs:  # job ids from the job table, under a lock (two submit threads)
        fcntl.flock(jobs, fcntl.LOCK_EX)
        jobs.seek(0)
        job_id = str(1001 + len(jobs.readlines()))
        jobs.write(f"{{job_id}}|RUNNING|{{option('--job-name')}}\\n")
    wrapped = next(arg[len("--wrap="):] for arg in args if arg.startswith("--wrap="))
    workdir = option("-D", ".")
    log = Path(workdir, option("--output").replace("%j", job_id))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        code = subprocess.call(wrapped, shell=True, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                               env={{**os.environ, "SLURM_JOB_ID": job_id}})
    with open(state / "jobs.txt", "a") as jobs:
        jobs.write(f"{{job_id}}|{{'COMPLETED' if code == 0 else 'FAILED'}}|{{option('--job-name')}}\\n")
    print(job_id)
elif command in ("sacct", "squeue"):  # the last state of each job of the run: JobIdRaw|State
    for line in (state / "jobs.txt").read_text().splitlines():
        job_id, status, name = line.split("|")
        if name == option("--name"):
            print(f"{{job_id}}|{{status}}")
elif command == "srun":
    while args and args[0].startswith("-"):
        args.pop(0)
    os.execvp(args[0], args)
elif command in ("sacctmgr", "sshare"):
    print("testacct")
elif command == "sinfo":
    print("PARTITION\\ntestpart*")
elif command == "scontrol":
    print("MinJobAge = 300")
"""


def fake_slurm(directory: Path) -> Path:
    """The fake SLURM commands in ``directory/bin``; their state and the record of calls in ``directory``."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "fake_slurm.py"
    script.write_text(FAKE_SLURM.format(python=sys.executable))
    script.chmod(0o755)
    for name in ("sbatch", "sacct", "squeue", "srun", "scontrol", "sinfo", "sacctmgr", "sshare", "scancel"):
        (bin_dir / name).symlink_to(script)
    (directory / "jobs.txt").write_text("")
    (directory / "calls.txt").write_text("")
    return bin_dir


def cpu_profile(directory: Path) -> Path:
    """profiles/slurm with its GPU requests set to 0 (this machine has none: a job given a GPU without CUDA fails by
    design), as docs/cluster.md suggests changing resources: in a copy of the profile."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    original = copy.deepcopy(profile)
    for rule in GPU_RULES:
        profile["set-resources"][rule]["gpu"] = 0
    assert {rule: {k: v for k, v in r.items() if k != "gpu"} for rule, r in profile["set-resources"].items()} == \
        {rule: {k: v for k, v in r.items() if k != "gpu"} for rule, r in original["set-resources"].items()}
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


def test_slurm_profile_runs_a_training_job_and_its_retrieval(paper_run, tmp_path):
    """Last in this file: it retrains one run in place, then encodes both corpus shards in one job and searches them
    in another, every job through sbatch and a job step (srun)."""
    workdir, _, env, _ = paper_run
    run = "model~distilbert/objective~static/in_batch~false/tau~0.2/fraction~1/negatives~docpairs/batching~random/" \
          f"seed~{CONFIG['training']['seed']}/lr~{CONFIG['training']['learning_rate']:g}"
    target = f"results/search/trained/{run}/trec-dl-2019/topk.npz"
    before = (workdir / "results/train" / run / "train_log.jsonl").stat().st_mtime_ns
    bin_dir = fake_slurm(tmp_path)
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "FAKE_SLURM_DIR": str(tmp_path)}
    run_snakemake(workdir, env, target, "--forcerun", "train", "--workflow-profile", str(cpu_profile(tmp_path / "p")),
                  "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
                  "--default-resources", "slurm_account=testacct", "slurm_partition=testpart")
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    submitted = [call for call in calls if call.startswith("sbatch ")]
    rules = sorted(re.search(r"--comment rule_(\w+?)_wildcards", call)[1] for call in submitted)
    assert rules == ["encode_docs", "encode_queries", "search", "train"]  # one job each for both shards
    assert sum(call.startswith("srun ") for call in calls) == len(submitted)  # each job ran as a job step
    states = dict(line.split("|")[:2] for line in (tmp_path / "jobs.txt").read_text().splitlines())  # the last one
    assert len(states) == len(submitted) and set(states.values()) == {"COMPLETED"}
    train = next(call for call in submitted if "--comment rule_train_" in call)
    assert f"--configfiles {PAPER} {OVERLAY}" in train  # the job re-reads both configuration files
    assert "-A testacct" in train and "-p testpart" in train
    assert "--cpus-per-task=8" in train and "--mem 64000" in train and "-t 2880" in train
    assert (workdir / "results/train" / run / "train_log.jsonl").stat().st_mtime_ns > before
    assert (workdir / target).stat().st_mtime_ns > before
