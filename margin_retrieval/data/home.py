"""The ``ir_datasets`` home: where every collection's downloads and docstores live, and its cross-process lock."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


def configure_home(home: str | os.PathLike | None) -> None:
    """Point ``IR_DATASETS_HOME`` at ``home`` (made absolute); ``None`` keeps the environment's default."""
    if home is None:
        return
    path = str(Path(home).expanduser().resolve())
    previous = os.environ.get("IR_DATASETS_HOME")
    if "ir_datasets" in sys.modules and previous != path:
        # Built-in datasets (e.g. beir/*) computed their paths at import: they would keep the old home.
        log.warning("ir_datasets was imported before configure_home(%s) (home was %s): built-in datasets keep "
                    "the old cache paths; call configure_home first", path, previous)
    os.environ["IR_DATASETS_HOME"] = path
    Path(path).mkdir(parents=True, exist_ok=True)


def home_path() -> Path:
    return Path(os.environ.get("IR_DATASETS_HOME", Path.home() / ".ir_datasets"))


@contextlib.contextmanager
def home_lock() -> Iterator[None]:
    """An exclusive lock on the ir_datasets home, across processes of this machine."""
    import fcntl

    path = home_path()
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".margin_retrieval.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
