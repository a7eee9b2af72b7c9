"""Archiving finished runs of a grid so a later session reads them instead of training them again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from margin_retrieval.evaluation.summary import git_commit
from margin_retrieval.models.device import cpu_description
from margin_retrieval.workflow import archive
from margin_retrieval.jobs.io import read_tsv

DONE = "model~tiny/objective~adaptive/seed~0"
UNFINISHED = "model~tiny/objective~adaptive/seed~1"
COLLECTIONS = ("in-domain", "transfer")


def fake_results(root: Path) -> Path:
    """A results/ folder whose manifest lists two runs: one with every file, one not yet evaluated on 'transfer'."""
    results = root / "results"
    systems = [{"system": f"trained/{run}", "kind": "trained", "collection": collection}
               for run in (DONE, UNFINISHED) for collection in COLLECTIONS]
    systems.append({"system": "zeroshot/tiny", "kind": "zeroshot", "collection": "in-domain"})
    (results).mkdir(parents=True)
    (results / "systems.json").write_text(json.dumps({"systems": systems}))
    for name in archive.run_files(DONE, COLLECTIONS):
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_text(f"content of {name}\n")
    for name in archive.run_files(UNFINISHED, COLLECTIONS[:1]):
        (results / name).parent.mkdir(parents=True, exist_ok=True)
        (results / name).write_text("partial\n")
    return results


def test_run_files_are_the_log_benchmark_and_evaluation_per_collection():
    assert archive.run_files("r", ["a"]) == [
        "train/r/train_log.jsonl", "benchmarks/train/r.tsv", "eval/a/trained/r.json", "eval/a/trained/r.tsv"]


def test_only_runs_with_every_file_are_archived_with_their_provenance(tmp_path):
    results = fake_results(tmp_path)
    store = tmp_path / "archive"
    assert archive.archive_runs(store, results) == [DONE]
    assert archive.is_archived(store, DONE, COLLECTIONS)
    assert not archive.is_archived(store, UNFINISHED, COLLECTIONS)
    for name in archive.run_files(DONE, COLLECTIONS):
        assert (store / name).read_text() == f"content of {name}\n"
    rows = read_tsv(store / archive.PROVENANCE)
    assert [row["run"] for row in rows] == [DONE]
    assert rows[0]["cpu"] and rows[0]["archived"].endswith("Z")


def test_the_cpu_of_each_archived_run_is_read_from_its_provenance(tmp_path):
    store, results = tmp_path / "archive", fake_results(tmp_path)
    assert archive.run_cpus(store) == {}  # no archive yet
    archive.archive_runs(store, results)
    assert archive.run_cpus(store) == {DONE: cpu_description()}


def test_archiving_again_copies_nothing_new(tmp_path):
    results = fake_results(tmp_path)
    store = tmp_path / "archive"
    archive.archive_runs(store, results)
    assert archive.archive_runs(store, results) == []
    assert len(read_tsv(store / archive.PROVENANCE)) == 1


def test_a_run_missing_a_collection_of_the_grid_is_not_archived(tmp_path):
    results = fake_results(tmp_path)
    store = tmp_path / "archive"
    archive.archive_runs(store, results)
    assert not archive.is_archived(store, DONE, [*COLLECTIONS, "another"])


def test_provenance_commit_is_dirty_only_for_changes_outside_the_archive(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "archive").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "archive/runs.tsv").write_text("run\n")
    git("add", ".")
    git("commit", "-q", "-m", "c")
    head = git("rev-parse", "HEAD")
    assert git_commit(tmp_path, exclude=[tmp_path / "archive"]) == head
    (tmp_path / "archive/runs.tsv").write_text("run\nr1\n")  # the archive grows as runs finish
    assert git_commit(tmp_path) == head + "-dirty"
    assert git_commit(tmp_path, exclude=[tmp_path / "archive"]) == head
    (tmp_path / "code.py").write_text("x = 2\n")  # the code itself changed: the runs may not be the commit's
    assert git_commit(tmp_path, exclude=[tmp_path / "archive"]) == head + "-dirty"
    assert git_commit(tmp_path / "archive" / "not-a-checkout") is None


# (step, validation nDCG@10) of the run the cap ends: the best by step 230 is 0.6587 at 216, the best 0.66349 at 288
CAP_CURVE = [(0, 0.626), (216, 0.6587), (234, 0.6612), (288, 0.66349), (320, 0.6601)]


def test_the_runs_table_says_how_each_archived_run_trained_and_ended(tmp_path):
    """tools/archive_runs.py: one row per run of runs.tsv, in table order, from its log's end event and benchmark;
    batching is named only where a run departs from the archive's usual random batches; a run the cap ended shows how
    far its best validation rose over the last 90 steps (0.66349 - 0.6587, the best at or before step 230)."""
    runs = {"model~tiny/objective~adaptive/in_batch~false/tau~none/fraction~0.5/seed~1/lr~0.0002":
            {"step": 198, "best_step": 108, "best_value": 0.6704, "stopped_reason": "early_stopping", "s": 1020.0},
            "model~tiny/objective~margin_mse/in_batch~false/tau~none/fraction~1/seed~0/lr~0.0002":
            {"step": 320, "best_step": 288, "best_value": 0.66349, "stopped_reason": "max_steps", "s": 2100.0},
            "model~tiny/objective~adaptive/in_batch~false/tau~none/fraction~1/batching~clustered/seed~0/lr~0.0002":
            {"step": 126, "best_step": 36, "best_value": 0.674, "stopped_reason": "early_stopping", "s": 600.0}}
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / archive.PROVENANCE).write_text("run\tarchived\tcommit\tcpu\n" + "".join(f"{run}\t-\t-\t-\n" for run in runs))
    for run, end in runs.items():
        log = folder / archive.train_log(run)
        log.parent.mkdir(parents=True)
        validations = [{"event": "validation", "step": step, "nDCG@10": value} for step, value in CAP_CURVE] \
            if end["stopped_reason"] == "max_steps" else []
        events = [{"event": "start", "step": 0}, *validations, {"event": "end", **end}]
        log.write_text("".join(json.dumps(event) + "\n" for event in events))
        benchmark = folder / archive.train_benchmark(run)
        benchmark.parent.mkdir(parents=True, exist_ok=True)
        benchmark.write_text(f"s\th:m:s\n{end['s']}\t-\n")
    table = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "tools" / "archive_runs.py"), str(folder)],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert table[2:] == [  # Margin-MSE comes first in table order, full data before fractions
        "| Margin-MSE | 0 | 0.0002 | 320 | the cap | 288 | 0.663 | 35 min | +0.005 |",
        "| adaptive margin, clustered batches | 0 | 0.0002 | 126 | early stopping | 36 | 0.674 | 10 min | – |",
        "| adaptive margin, 50% data | 1 | 0.0002 | 198 | early stopping | 108 | 0.670 | 17 min | – |"]
