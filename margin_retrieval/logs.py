"""Logging for Snakemake jobs: everything a job says (including tracebacks) goes to its rule's log file."""

from __future__ import annotations

import logging
import os
import sys


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
    # transformers' load/save progress bars would fill the job logs with carriage-return noise.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
