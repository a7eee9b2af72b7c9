"""Archiving finished runs of a grid so a later session reads them instead of training them again."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from margin_retrieval.evaluation.summary import git_commit
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
