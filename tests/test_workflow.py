"""The whole DAG on `.test/` (tiny random BERTs, tiny collections), plus lint and dry runs of the shipped configs."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.utils import Paramspace

from margin_retrieval.models.device import cpu_description
from margin_retrieval.workflow import archive, checks
from margin_retrieval.workflow.experiments import expand_experiments
from tests.configs import grid_defaults

REPO = Path(__file__).resolve().parents[1]
TEST_DIR = REPO / ".test"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# .test/config.yaml trains every objective once (static in its original in-batch form), adaptive at two fractions.
TRAINED = {"static/true", "adaptive/false", "distributed/false", "margin_mse/false", "infonce/false"}
FIGURES = ("tau", "data_efficiency", "training_curves", "speedup", "targets", "per_query", "negatives", "batching")
REPORT_TABLES = ("main_table", "claims", "results", "speedup", "training_summary")
LONG_JOBS = ("train", "score_teacher", "encode_docs", "encode_queries")
TEST_OUTPUTS = ("results", "figures", "resources", ".snakemake", "report.html")  # .test/.gitignore


def snakemake(workdir: Path, config: Path | None, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir``; without ``config`` the Snakefile reads ``workdir/config.yaml``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    configfile = ["--configfile", str(config)] if config else []
    result = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *configfile, *args],
                            capture_output=True, text=True, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return result


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`snakemake --directory .test --cores 2` on a copy of .test, so the checkout stays clean."""
    root = tmp_path_factory.mktemp("smoke") / "test"
    shutil.copytree(TEST_DIR, root, ignore=shutil.ignore_patterns(*TEST_OUTPUTS))
    snakemake(root, None, "--cores", "2")
    return root, None


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
    for figure in FIGURES:
        for suffix in ("png", "pdf"):
            assert (root / "figures" / f"{figure}.{suffix}").stat().st_size > 0, (figure, suffix)
    markdown = (root / "figures/main_table.md").read_text()
    assert "Margin-MSE" in markdown and "TOST" in markdown
    assert (root / "figures/main_table.tex").read_text().count("\\begin{tabular}") == 3  # overview + per collection
    assert " nDCG@10 in-domain | nDCG@10 transfer |" in markdown.split("### in-domain")[0]  # the overview first
    claims = (root / "figures/claims.md").read_text()
    assert "| matches Margin-MSE | in-domain | adaptive margin | Margin-MSE |" in claims  # .test: one seed each
    snakemake(root, config, "--report", "report.html")
    results = report_results((root / "report.html").read_text())
    expected = {f"figures/{figure}.png": "image/png" for figure in FIGURES}
    expected |= {f"figures/report/{table}.html": "text/html" for table in REPORT_TABLES}
    assert set(results) == set(expected)
    for path, entry in results.items():
        assert entry["mime_type"] == expected[path], path  # viewable in the browser, not a download
        assert entry["data_uri"].startswith(f"data:{expected[path]}"), path
        assert len(entry["caption"]) > 200 and "{{" not in entry["caption"], path  # rendered, not a stub
    main = results["figures/report/main_table.html"]
    assert "Margin-MSE" in base64.b64decode(main["data_uri"].split(",", 1)[1]).decode()


def test_training_summary_covers_every_trained_run(smoke_run):
    root, _ = smoke_run
    train = root / "results/train"
    runs = {str(log.parent.relative_to(train)) for log in train.rglob("train_log.jsonl")}
    with open(root / "figures/training_summary.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert {row["system"].removeprefix("trained/") for row in rows} == runs
    with open(root / "figures/validation_noise.tsv") as handle:
        noise = list(csv.DictReader(handle, delimiter="\t"))
    assert {row["run"].removeprefix("trained/") for row in noise} == runs
    assert all(int(row["queries"]) > 0 and row["best_vs_final_sd"] != "" for row in noise)  # per-query values logged
    with open(root / "figures/learning_rates.tsv") as handle:
        rates = list(csv.DictReader(handle, delimiter="\t"))
    assert sorted(float(row["lr"]) for row in rates if row["objective"] == "margin_mse") == [1e-3, 3e-3]
    assert sum(row["chosen"] == "True" for row in rates) == 1  # one setting trained at two rates, one choice
    agreement = json.loads((root / "figures/validation_agreement.json").read_text())
    assert agreement["n_runs"] == len(runs) == sum(agreement["stopped"].values())
    assert set(agreement["collections"]) == {"in-domain", "transfer"}


def report_results(page: str) -> dict:
    """The ``results`` object that Snakemake's HTML report embeds: path -> caption, mime type, data URI."""
    match = re.search(r'<script id="results">\s*var results = (.*?);\s*</script>', page, re.S)
    assert match, "no results block in report.html"
    return json.loads(match[1])


def test_runs_are_complete_and_strictly_ordered(smoke_run):
    root, _ = smoke_run
    run = root / "results/runs/in-domain/trained"
    files = sorted(run.rglob("*.trec"))
    assert files
    queries = {line.split("\t")[0] for line in (root / "data/test/queries.tsv").read_text().splitlines()}
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


def test_each_student_is_validated_untrained_once_and_every_run_logs_it_as_step_0(smoke_run):
    root, _ = smoke_run
    untrained = {path.parent.name: json.loads(path.read_text())
                 for path in (root / "results/train_data/untrained_validation").glob("*/cosine.json")}
    assert set(untrained) == {"tiny"}
    logs = [log for log in (root / "results/train").rglob("train_log.jsonl") if "objective~margin_mse" not in str(log)]
    assert logs
    for log in logs:
        step0 = next(json.loads(line) for line in log.read_text().splitlines() if '"validation"' in line)
        assert step0["step"] == 0 and step0["nDCG@10"] == untrained["tiny"]["nDCG@10"], log
        assert step0["per_query"] == pytest.approx(untrained["tiny"]["per_query"], abs=5e-7), log  # logged: 6 decimals


def test_a_run_that_kept_its_untrained_model_shares_the_zero_shot_encoding(smoke_run):
    root, _ = smoke_run
    copied = [path for path in (root / "results/logs/encode_docs").rglob("*.log")
              if "unchanged: its embeddings are" in path.read_text()]
    assert copied  # the tiny grid has such a run; without one this test would check nothing
    for log in copied:
        job = log.relative_to(root / "results/logs/encode_docs").with_suffix("")
        system, corpus = job.parent, job.name
        shards = sorted((root / "results/embeddings" / system / "corpus" / corpus).glob("docs-*.npz"))
        assert [path.name for path in shards] == ["docs-1-of-2.npz", "docs-2-of-2.npz"]
        for path in shards:
            own, base = np.load(path), np.load(root / "results/embeddings/zeroshot/tiny/corpus" / corpus / path.name)
            assert (own["ids"] == base["ids"]).all() and (own["embeddings"] == base["embeddings"]).all()


def test_student_negatives_have_their_own_triples_and_run(smoke_run):
    """Which triples the train job reads is checked on the DAG (test_experiments); here the jobs run end to end."""
    root, _ = smoke_run
    data = root / "results/train_data"
    student, bm25 = (data / "student/tiny/triples.tsv").read_text(), (data / "bm25/triples.tsv").read_text()
    assert student.splitlines()[0] == bm25.splitlines()[0] and student != bm25
    run = ("model~tiny/objective~adaptive/in_batch~false/tau~none/fraction~1/negatives~student/batching~random/seed~1"
           "/lr~0.001")
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


def test_every_trained_model_has_a_card_and_loads_in_sentence_transformers(smoke_run):
    root, _ = smoke_run
    model_dirs = sorted((root / "results/train").rglob("model"))
    assert len(model_dirs) == 9
    for model_dir in model_dirs:
        card = (model_dir / "README.md").read_text()
        assert card.startswith("---\nlibrary_name: sentence-transformers") and "Best validation nDCG@10" in card
    assert (root / "results/models/tiny/README.md").is_file()
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from margin_retrieval.models.encoders import Encoder

    texts = ["cell protein gene", "the heart of patients"]
    theirs = sentence_transformers.SentenceTransformer(str(model_dirs[0]), device="cpu").encode(texts)
    assert abs(theirs - Encoder.load(model_dirs[0]).encode(texts, 32, precision="fp32")).max() <= 1e-5


def test_every_system_and_collection_has_a_summary(smoke_run):
    root, _ = smoke_run
    with open(root / "figures/results.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        summary = json.loads((root / f"results/summaries/{row['collection']}/{row['system']}.json").read_text())
        assert summary["measures"][row["measure"]] == pytest.approx(float(row["value"]))
        assert summary["scores"]["test"][0]["main_score"] == summary["measures"]["nDCG@10"]
        assert summary["config"]["training"]["seed"] == summary["seed"]["training"]
        assert (summary["training"] is None) == (row["kind"] == "zeroshot")


def test_long_jobs_log_progress_without_carriage_returns(smoke_run):
    root, _ = smoke_run
    for rule in LONG_JOBS:
        single = root / "results/logs" / f"{rule}.log"
        files = [single] if single.is_file() else sorted((root / "results/logs" / rule).rglob("*.log"))
        assert files, rule
        encoded = 0
        for path in files:
            text = path.read_text()
            assert "\r" not in text, path
            if "unchanged: its embeddings are" in text:  # a model equal to its base copies the base's encoding
                continue
            encoded += 1
            assert "/s, elapsed" in text and ", ETA " in text, path
            # the last line: all work done, or (training) where it stopped, early stopping included
            assert ("stopped (" in text) if rule == "train" else ("(100.0%)" in text), path
        assert encoded, rule
    train_log = next((root / "results/logs/train").rglob("*.log")).read_text()
    assert "validation at step 0: nDCG@10" in train_log and "patience steps used" in train_log
    assert "triples/s" in train_log and "loss " in train_log


def test_rerun_is_up_to_date(smoke_run):
    root, config = smoke_run
    result = snakemake(root, config, "--dry-run", "--quiet", "rules")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_archived_runs_are_read_from_the_archive_and_not_trained_again(smoke_run, tmp_path):
    """A later session: the runs archived from this one, no trained files in results/, the same results table, and
    the systems manifest names each run's CPU from the archive's runs.tsv."""
    root, _ = smoke_run
    store = tmp_path / "archive"
    archived = archive.archive_runs(store, root / "results")
    assert len(archived) == len(list((root / "results/train").rglob("train_log.jsonl")))
    later = tmp_path / "later"
    shutil.copytree(root, later)  # with .snakemake: its metadata sees that the manifest's paths changed
    for folder in ("train", "benchmarks/train", "embeddings/trained",
                   *(f"{kind}/{c}/trained" for kind in ("eval", "runs") for c in ("in-domain", "transfer"))):
        shutil.rmtree(later / "results" / folder)
    (later / "figures/results.tsv").unlink()
    dry = snakemake(later, None, "--dry-run", "--quiet", "rules", "--config", f"archive={store}")
    assert not re.search(r"^(train|encode_docs|search|evaluate)\s", dry.stdout, re.M), dry.stdout
    snakemake(later, None, "figures/results.tsv", "--cores", "2", "--config", f"archive={store}")
    assert (later / "figures/results.tsv").read_text() == (root / "figures/results.tsv").read_text()
    systems = json.loads((later / "results/systems.json").read_text())["systems"]
    assert {s["cpu"] for s in systems if s["kind"] == "trained"} == {cpu_description()}


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint", "--directory", str(REPO)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr


def assert_one_train_job_per_run(*overlays: str) -> None:
    """A forced dry run of config.yaml (merged with ``config/<overlay>`` files) plans one train job per grid run that
    is not archived."""
    configfiles = ["--configfile", "config.yaml", *(f"config/{o}" for o in overlays)] if overlays else []
    result = subprocess.run([*SNAKEMAKE, "--dry-run", "--forceall", "--quiet", "rules", "--directory", str(REPO),
                             *configfiles],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for overlay in overlays:
        grid = yaml.safe_load((REPO / "config" / overlay).read_text())
        config["training"].update(grid.get("training", {}))
        config["experiments"].update(grid["experiments"])
        config["archive"] = grid.get("archive", config.get("archive"))
        config["collections"].update(grid.get("collections", {}))
    checks.drop_removed_collections(config)
    runs = expand_experiments(config["experiments"], [config["student"]], grid_defaults(config)).table
    patterns = Paramspace(runs.drop(columns="group"), param_sep="~").instance_patterns
    # Runs an earlier session archived are read from the archive, not trained.
    store = REPO / config["archive"] if config.get("archive") else None
    to_train = [p for p in patterns if not (store and archive.is_archived(store, p, config["collections"]))]
    # The job table's row of the train rule (a bare "train" would also match training_data and the data names); a
    # grid whose runs are all archived has no such row (Snakemake prints the table twice).
    train_rows = set(re.findall(r"^train\s+(\d+)$", result.stdout, re.M))
    assert train_rows == ({str(len(to_train))} if to_train else set()), result.stdout


def test_default_config_dry_runs():
    assert_one_train_job_per_run()


SCIFACT_GRIDS = ["scifact_core", "scifact_full", "scifact_headline", "scifact_protocol", "scifact_tuned"]


@pytest.mark.parametrize("grid", SCIFACT_GRIDS)
def test_scifact_grids_dry_run_with_one_train_job_per_run(grid):
    assert_one_train_job_per_run(f"{grid}.yaml")


@pytest.mark.parametrize("grid, archive", [("scifact_full", "scifact_full"), ("scifact_headline", "scifact_full"),
                                           ("scifact_protocol", "scifact_protocol"), ("scifact_tuned", "scifact_tuned")])
def test_archived_runs_are_read_not_trained_again(grid, archive):
    """A grid's dry run plans no training job for a run its archive holds (first-protocol configs pin that protocol
    and drop Cranfield, which their runs were never evaluated on); the complete archives plan none at all."""
    result = subprocess.run([*SNAKEMAKE, "--dry-run", "--directory", str(REPO), "--configfile", "config.yaml",
                             f"config/{grid}.yaml"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    planned = set(re.findall(r"output: results/train/(\S+)/model,", result.stdout))
    with open(REPO / "archive" / archive / "runs.tsv") as handle:
        archived = {row["run"] for row in csv.DictReader(handle, delimiter="\t")}
    assert archived and not planned & archived, sorted(planned & archived)[:3]
    if grid != "scifact_tuned":  # the tuned grid is archived run by run
        assert not planned, sorted(planned)[:3]


@pytest.mark.parametrize("grid", SCIFACT_GRIDS)
def test_scifact_grids_write_their_figures_beside_their_archive(grid):
    """A grid's tables and figures go to ``archive/<grid>/figures/`` (its ``figures`` key), where they are committed;
    nothing of it goes to ``figures/``, which holds the default run's."""
    result = subprocess.run([*SNAKEMAKE, "--dry-run", "--forceall", "--directory", str(REPO),
                             "--configfile", "config.yaml", f"config/{grid}.yaml"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = {path for line in re.findall(r"^\s+output: (.+)$", result.stdout, re.M) for path in line.split(", ")}
    drawn = {path for path in outputs if not path.startswith("results/")}
    assert f"archive/{grid}/figures/main_table.md" in drawn
    assert all(path.startswith(f"archive/{grid}/figures/") for path in drawn), sorted(drawn)


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


@pytest.mark.parametrize("cores, setting, threads", [("4", None, 2), ("2", None, 1), ("4", 3, 3), ("2", 3, 2)])
def test_torch_jobs_get_half_the_cores_unless_threads_per_job_says(tmp_path, cores, setting, threads):
    """Two jobs side by side by default; ``threads_per_job`` sets their threads, never beyond --cores."""
    shutil.copytree(TEST_DIR, tmp_path / "test", ignore=shutil.ignore_patterns(*TEST_OUTPUTS))
    overrides = ["--config", f"threads_per_job={setting}"] if setting else []
    result = snakemake(tmp_path / "test", None, "--dry-run", "--cores", cores, *overrides)
    planned = {}  # rule -> the threads of its jobs (a dry run prints "threads: n" only for n > 1)
    for job in re.split(r"^\[.*\]$", result.stdout, flags=re.M):
        rule = re.search(r"^rule (\w+):", job, re.M)
        if rule and rule[1] in ("train", "encode_docs", "score_teacher", "search"):
            count = re.search(r"^\s+threads: (\d+)$", job, re.M)
            planned.setdefault(rule[1], set()).add(int(count[1]) if count else 1)
    assert planned == {rule: {threads} for rule in ("train", "encode_docs", "score_teacher", "search")}
