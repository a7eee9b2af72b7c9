"""Logging for Snakemake jobs: everything a job says (including tracebacks) goes to its rule's log file."""

from __future__ import annotations

import logging
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
