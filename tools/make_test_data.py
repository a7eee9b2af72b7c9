"""Regenerate the data of ``.test/`` (the tiny test workflow): three tiny collections and two tiny random BERTs.

The files are committed so that ``snakemake --directory .test --cores 2`` runs without this script; rerun it (from the
repository root: ``python tools/make_test_data.py``) after changing tests/tiny_bert.py or tests/tiny_collection.py,
and tests/test_test_data.py checks that the committed files are what it writes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tiny_bert import make_tiny_bert  # noqa: E402
from tests.tiny_collection import write_collection  # noqa: E402

# name -> (n_queries, seed); the same collections the smoke test used when it built them at test time.
COLLECTIONS = {"train": (24, 0), "test": (10, 1), "transfer": (6, 2)}
# name -> seed; the teacher differs in weights, so its scores are not the student's.
MODELS = {"tiny-bert": 0, "tiny-teacher": 1}


def make_test_data(root: Path) -> None:
    for name, (n_queries, seed) in COLLECTIONS.items():
        write_collection(root / "data" / name, name, n_queries=n_queries, seed=seed)
    for name, seed in MODELS.items():
        shutil.rmtree(root / "models" / name, ignore_errors=True)
        make_tiny_bert(root / "models" / name, seed=seed)


if __name__ == "__main__":
    make_test_data(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".test")
