"""Mistakes in what a user gave the workflow (config values, local files, installed packages), as opposed to bugs.

Their messages name the key or the file and line and say what to do, so they are shown alone, without a Python
traceback: the ``Snakefile`` reads the config inside ``exit_on_user_error``, and a job script's log gets the message
as one line (``margin_retrieval.jobs.logs.setup_job_logging``). Any other exception keeps its traceback.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


class UserError(Exception):
    """A problem the user fixes in the config or the input files; the message says everything needed."""


class ConfigError(UserError, ValueError):
    """A config value that would make a job fail (or silently change a result) later."""


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """End the process with a UserError's message and exit status 1: Snakemake would print the Python frames of the
    check under the message (its own ``WorkflowError`` layout), which tell a user nothing."""
    try:
        yield
    except UserError as error:
        sys.exit(f"Error: {error}")
