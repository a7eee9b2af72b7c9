"""A job script's log: a mistake of the user's (UserError) as one line, any other error with its traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_job(tmp_path: Path, raise_statement: str) -> tuple[subprocess.CompletedProcess, str]:
    """A job script that sets up its log as every workflow script does, then raises."""
    log = tmp_path / "job.log"
    script = (f"from margin_retrieval.jobs.logs import setup_job_logging\nsetup_job_logging({str(log)!r})\n"
              f"from margin_retrieval.data.local_formats import MalformedFileError\n{raise_statement}\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    return result, log.read_text()


def test_a_user_error_is_one_log_line_and_exit_status_1(tmp_path):
    message = "collection 'c' (qrels): q.txt:2: expected x, got 'y'"
    result, log = run_job(tmp_path, f"raise MalformedFileError({message!r})")
    assert result.returncode == 1
    assert log.count("\n") == 1 and "Traceback" not in log, log
    assert log.rstrip().endswith(f"ERROR margin_retrieval: {message}"), log


def test_an_unexpected_error_keeps_its_traceback(tmp_path):
    result, log = run_job(tmp_path, "raise KeyError('d7')")
    assert result.returncode == 1
    assert log.startswith("Traceback (most recent call last):") and log.rstrip().endswith("KeyError: 'd7'"), log
