"""The whole DAG on a tiny random BERT and a tiny collection, plus lint and dry runs of the shipped configs."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from margin_retrieval.experiments import expand_experiments
from tests.tiny_bert import make_tiny_bert
from tests.tiny_collection import write_collection

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# Every objective once (static with an int tau and the original in-batch form), adaptive at two nested fractions,
# InfoNCE also with clustered batches.
OBJECTIVE_GRID = {
    "static_sweep": [{"objective": "static", "tau": 1, "in_batch": True}],
    "loss_comparison": [{"objective": ["distributed", "margin_mse", "infonce"]}],
    "data_efficiency": [{"objective": "adaptive", "fraction": [0.5, 1.0]}],
    # the grid's negatives and seed columns: the student's own negatives, a second seed
    "negative_sources": [{"objective": "adaptive", "negatives": "student", "seed": 1}],
    "batch_sampling": [{"objective": "infonce", "batching": "clustered"}],
}
PARALLEL_RULES = ("prepare_model", "score_teacher", "train", "encode_docs", "encode_queries", "search")
TRAINED = {"static/true", "adaptive/false", "distributed/false", "margin_mse/false", "infonce/false"}


def smoke_config(root: Path) -> dict:
    return {
        "ir_datasets_home": str(root / "ir_datasets"),
        "models": {
            "tiny": {"source": str(make_tiny_bert(root / "tiny-bert", seed=0)), "pooling": "mean"},
            "tiny-teacher": {"source": str(make_tiny_bert(root / "tiny-teacher", seed=1)), "pooling": "cls"},
        },
        "student": "tiny",
        "teacher": "tiny-teacher",
        "zeroshot": ["tiny"],
        "train_data": {
            **write_collection(root / "train", "train", n_queries=24, seed=0),
            "validation_queries": 4,
            "negatives": {"source": "bm25", "depth": 10, "per_positive": 1},
            "validation": {"candidates": "bm25", "depth": 8},
        },
        "training": {"batch_size": 4, "max_epochs": 1, "validate_every": 2, "checkpoint_every": 2,
                     "max_query_length": 16, "max_doc_length": 32, "learning_rate": 1e-3},
        "experiments": OBJECTIVE_GRID,
        "collections": {
            "in-domain": {**write_collection(root / "test", "test", n_queries=10, seed=1), "binarize_at": 2},
            "transfer": write_collection(root / "transfer", "transfer", n_queries=6, seed=2),
        },
        "retrieval": {"depth": 20, "shards": 2, "batch_size": 8},
        "analysis": {"equivalence_margin": 0.05},
    }


def snakemake(workdir: Path, config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(config), *args],
                            capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(smoke_config(root)))
    # The tiny jobs are dominated by single-threaded imports: one thread each lets two run at once on 2 cores.
    snakemake(root, config_path, "--cores", "2", "--set-threads", *(f"{rule}=1" for rule in PARALLEL_RULES))
    return root, config_path


def test_full_dag_produces_every_output(smoke_run):
    root, _ = smoke_run
    with open(root / "figures/results.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    systems = {row["system"] for row in rows}
    assert "zeroshot/tiny" in systems
    trained = {row["objective"] + "/" + row["in_batch"] for row in rows if row["kind"] == "trained"}
    assert trained == TRAINED
    assert {row["collection"] for row in rows} == {"in-domain", "transfer"}
    for row in rows:
        assert 0.0 <= float(row["value"]) <= 1.0


def test_every_figure_table_and_the_report(smoke_run):
    root, config = smoke_run
    for figure in ("tau", "data_efficiency", "training_curves", "speedup", "targets", "per_query", "negatives",
                   "batching"):
        for suffix in ("png", "pdf"):
            assert (root / "figures" / f"{figure}.{suffix}").stat().st_size > 0, (figure, suffix)
    markdown = (root / "figures/main_table.md").read_text()
    assert "Margin-MSE" in markdown and "TOST" in markdown
    assert (root / "figures/main_table.tex").read_text().count("\\begin{tabular}") == 2  # one per collection
    snakemake(root, config, "--report", "report.html")
    assert (root / "report.html").stat().st_size > 10_000


def test_runs_are_complete_and_strictly_ordered(smoke_run):
    root, _ = smoke_run
    run = root / "results/runs/in-domain/trained"
    files = sorted(run.rglob("*.trec"))
    assert files
    queries = {line.split("\t")[0] for line in (root / "test/queries.tsv").read_text().splitlines()}
    for path in files:
        by_query: dict[str, list[float]] = {}
        for line in path.read_text().splitlines():
            qid, q0, _doc, _rank, score, _tag = line.split()
            assert q0 == "Q0"
            by_query.setdefault(qid, []).append(float(score))
        assert set(by_query) == queries
        for scores in by_query.values():
            assert all(a > b for a, b in zip(scores, scores[1:]))


def test_trained_model_is_a_loadable_huggingface_directory(smoke_run):
    root, _ = smoke_run
    model_dirs = sorted((root / "results/train").rglob("model"))
    assert model_dirs
    from margin_retrieval.models.encoders import Encoder

    encoder = Encoder.load(model_dirs[0])
    assert json.loads((model_dirs[0] / "margin_retrieval.json").read_text())["pooling"] == "mean"
    assert encoder.encode(["cell protein"], 16, 4, "fp32").shape[0] == 1


def test_training_logs_have_validation_and_targets(smoke_run):
    root, _ = smoke_run
    for log in (root / "results/train").rglob("train_log.jsonl"):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert events[0]["event"] == "start" and events[-1]["event"] == "end"
        assert any(e["event"] == "validation" for e in events)
        if "objective~adaptive" in str(log):
            assert all(e["target_mean"] is not None for e in events if e["event"] == "train")


def test_student_negatives_have_their_own_triples_and_run(smoke_run):
    """Which triples the train job reads is checked on the DAG (test_experiments); here the jobs run end to end."""
    root, _ = smoke_run
    data = root / "results/train_data"
    student, bm25 = (data / "student/tiny/triples.tsv").read_text(), (data / "bm25/triples.tsv").read_text()
    assert student.splitlines()[0] == bm25.splitlines()[0] and student != bm25
    run = "model~tiny/objective~adaptive/in_batch~false/tau~none/fraction~1/negatives~student/batching~random/seed~1"
    events = [json.loads(line) for line in (root / "results/train" / run / "train_log.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"


def test_clustered_run_trains_on_the_shared_clustering(smoke_run):
    root, _ = smoke_run
    clusters = root / "results/train_data/bm25/clusters/tiny/fraction~1"
    stats = json.loads(clusters.with_suffix(".json").read_text())
    with open(clusters.with_suffix(".tsv")) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    with open(root / "results/train_data/bm25/triples.tsv") as handle:
        n_train_triples = sum(1 for _ in csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == stats["n_examples"] == n_train_triples
    # about n / batch_size clusters (k-means may leave a cluster empty on the tiny random BERT's embeddings)
    assert 1 < stats["n_clusters"] == len({row["cluster"] for row in rows}) <= n_train_triples // 4
    runs = sorted(p for p in (root / "results/train").glob("**/model") if "batching~clustered" in str(p))
    assert len(runs) == 1 and "objective~infonce" in str(runs[0])


def test_rerun_is_up_to_date(smoke_run):
    root, config = smoke_run
    result = snakemake(root, config, "--dry-run", "--quiet", "rules")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint", "--directory", str(REPO)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_config_dry_runs(tmp_path):
    result = subprocess.run([*SNAKEMAKE, "--dry-run", "--forceall", "--quiet", "rules", "--directory", str(REPO)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    # The job table's row of the train rule (a bare "train" would also match training_data and the data names).
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    runs = expand_experiments(config["experiments"], [config["student"]])
    assert re.search(rf"^train\s+{len(runs)}$", result.stdout, re.M), result.stdout


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["training"].update(batch_size=0), "batch_size"),
        (lambda c: c.update(student="missing"), "missing"),
        (lambda c: c["experiments"].update(bad=[{"objective": "nope"}]), "experiments.bad"),
        (lambda c: c.update(teacher=None), "teacher"),
    ],
)
def test_invalid_config_stops_before_any_job(tmp_path, change, message):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, path, "--dry-run", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
