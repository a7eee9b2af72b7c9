"""An interrupted write (an error such as a full disk, or kill -9) never leaves an output under its final name, so
Snakemake never takes a half-written model directory or run file for a complete one."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from margin_retrieval.models import sources
from margin_retrieval.models.encoders import Encoder
from margin_retrieval.retrieval import runs

REPO = Path(__file__).resolve().parents[1]


def run_arrays(n_queries: int = 3, k: int = 4):
    query_ids = np.array([f"q{i}" for i in range(n_queries)])
    doc_ids = np.array([[f"d{i}-{j}" for j in range(k)] for i in range(n_queries)])
    scores = np.tile(np.arange(k, 0, -1, dtype=np.float32), (n_queries, 1))
    return query_ids, doc_ids, scores


def visible(directory: Path) -> list[str]:
    """What Snakemake could take for an output: every entry that is not an atomic_path temporary (a dot name)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_disk_full_while_writing_a_run_leaves_no_run_file(tmp_path, monkeypatch):
    calls = []

    def full_after_two_lines(units: int) -> str:
        calls.append(units)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return str(units)

    monkeypatch.setattr(runs, "format_units", full_after_two_lines)
    query_ids, doc_ids, scores = run_arrays()
    with pytest.raises(OSError, match="No space left"):
        runs.write_run(tmp_path / "run.trec", query_ids, doc_ids, scores, "tag", list(query_ids))
    assert visible(tmp_path) == [] and not list(tmp_path.iterdir())  # the temporary is cleaned up too


def test_failed_model_save_leaves_no_model_directory(tiny_bert, tmp_path, monkeypatch):
    save = Encoder.save

    def save_then_fail(self, directory):
        save(self, directory)  # every file written ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... and then the disk is full

    monkeypatch.setattr(Encoder, "save", save_then_fail)
    with pytest.raises(OSError, match="No space left"):
        sources.prepare_model(str(tiny_bert), "mean", tmp_path / "models" / "tiny")
    assert visible(tmp_path / "models") == []


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    out, kind = Path(sys.argv[1]), sys.argv[2]
    if kind == "run":
        from margin_retrieval.retrieval import runs
        from tests.test_atomic_outputs import run_arrays
        format_units = runs.format_units
        def slow(units):
            time.sleep(0.5)  # every line takes long: the kill comes in the middle of the file
            return format_units(units)
        runs.format_units = slow
        query_ids, doc_ids, scores = run_arrays()
        runs.write_run(out, query_ids, doc_ids, scores, "tag", list(query_ids))
    else:
        from margin_retrieval.models import sources
        from margin_retrieval.models.encoders import Encoder
        save = Encoder.save
        def slow(self, directory):
            save(self, directory)
            time.sleep(60)  # written, not yet published: the kill comes here
        Encoder.save = slow
        sources.prepare_model(sys.argv[3], "mean", out)
""")


@pytest.mark.parametrize("kind", ["run", "model"])
def test_kill_9_while_writing_leaves_no_output(tiny_bert, tmp_path, kind):
    out = tmp_path / "out" / ("run.trec" if kind == "run" else "model")
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out), kind, str(tiny_bert)], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    written = False
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not written:
        temporaries = list(out.parent.glob(f".{out.name}.*/{out.name}")) if out.parent.exists() else []
        # mid-write: the run file is open (its lines take 0.5 s each), or the model directory is written
        written = any(path.is_file() or (path / "margin_retrieval.json").is_file() for path in temporaries)
        time.sleep(0.6 if written else 0.05)
    process.kill()  # SIGKILL: no cleanup code runs
    process.wait()
    assert written, "the writer never got to write"
    assert not out.exists()
    assert visible(out.parent) == []
