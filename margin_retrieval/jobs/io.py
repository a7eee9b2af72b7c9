"""Atomic file output: a consumer never sees a half-written file or directory under its final name."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and directories: the caller writes whatever it likes to the yielded path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    work = tmp / target.name
    try:
        yield work
        if not work.exists():
            raise FileNotFoundError(f"nothing was written to {target}")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def write_tsv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_tsv(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Written through a file handle, so numpy cannot append '.npz' to the temporary name."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def save_embeddings(path: str | os.PathLike, ids: Sequence[str], embeddings: np.ndarray) -> None:
    """``ids`` as a plain string array (loadable without pickle), ``embeddings`` [n, dim] as given."""
    save_npz(path, ids=np.asarray(ids, dtype=str), embeddings=np.asarray(embeddings))


def load_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return data["ids"], data["embeddings"]
