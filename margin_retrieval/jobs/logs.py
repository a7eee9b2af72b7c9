"""Logging for Snakemake jobs: everything a job says goes to its rule's log file, a mistake of the user's as one line
(``margin_retrieval.jobs.errors.UserError``: its message names the key or the file and line), any other error with its
traceback."""

from __future__ import annotations

import logging
import os
import sys

from margin_retrieval.jobs.errors import UserError


def setup_job_logging(path: str) -> None:
    handle = open(path, "a", buffering=1)
    sys.stderr = handle
    logging.basicConfig(
        stream=handle,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = _log_user_errors
    # transformers' load/save progress bars would fill the job logs with carriage-return noise.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _log_user_errors(kind, error, traceback) -> None:
    """The uncaught exception of a job script: a UserError as one log line (the exit status is 1 either way)."""
    if isinstance(error, UserError):
        logging.getLogger("margin_retrieval").error("%s", error)
    else:
        sys.__excepthook__(kind, error, traceback)
