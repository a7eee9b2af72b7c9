"""Trained runs kept beyond their results folder: a grid that outlasts the machine it runs on trains part of its
runs, archives what the analysis reads of each (training log, training benchmark, evaluation files) in a committed
folder, and a later run of the DAG, on any machine, reads those files from there instead of training the runs again
(config key ``archive``).

The archive mirrors the layout of ``results/``: ``<archive>/train/<run>/train_log.jsonl``,
``<archive>/benchmarks/train/<run>.tsv``, ``<archive>/eval/<collection>/trained/<run>.{json,tsv}``. Its
``runs.tsv`` says for every run when, at which commit and on which CPU it was archived. The grid's tables and
figures need no copy: its config key ``figures`` (``<archive>/figures``) has the workflow draw them there.

Usage, after a (partial) run of the grid and before its results folder is lost:
    python -m margin_retrieval.workflow.archive archive/scifact_full
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

from margin_retrieval.evaluation.summary import workflow_version
from margin_retrieval.jobs.io import atomic_path, read_json, read_tsv, write_tsv
from margin_retrieval.models.device import cpu_description

PathLike = str | os.PathLike
PROVENANCE = "runs.tsv"
PROVENANCE_COLUMNS = ("run", "archived", "commit", "cpu")


def train_log(run: str) -> str:
    """A trained run's training log, relative to ``results/`` (and to an archive)."""
    return f"train/{run}/train_log.jsonl"


def train_benchmark(run: str) -> str:
    """A trained run's training-job benchmark (Snakemake's timing file), relative to ``results/``."""
    return f"benchmarks/train/{run}.tsv"


def evaluation(collection: str, system: str, suffix: str) -> str:
    """A system's evaluation on a collection (``json``: aggregate, ``tsv``: per query), relative to ``results/``."""
    return f"eval/{collection}/{system}.{suffix}"


def run_files(run: str, collections: Iterable[str]) -> list[str]:
    """What the analysis reads of a trained run, relative to ``results/`` (and to an archive)."""
    return [
        train_log(run),
        train_benchmark(run),
        *(evaluation(collection, f"trained/{run}", suffix) for collection in collections for suffix in ("json", "tsv")),
    ]


def is_archived(archive: PathLike, run: str, collections: Iterable[str]) -> bool:
    """Whether every file of ``run`` is in ``archive``; a run with any file missing is trained again."""
    return all((Path(archive) / name).is_file() for name in run_files(run, collections))


def _trained_runs(manifest: PathLike) -> tuple[list[str], list[str]]:
    """The grid's trained runs and its collections, from ``results/systems.json``."""
    systems = read_json(manifest)["systems"]
    runs = sorted({record["system"].partition("/")[2] for record in systems if record["kind"] == "trained"})
    return runs, sorted({record["collection"] for record in systems})


def run_cpus(archive: PathLike) -> dict[str, str]:
    """The CPU each archived run was trained on, from ``runs.tsv`` (runs are archived on the machine that trained
    them); empty for an archive that does not exist yet."""
    path = Path(archive) / PROVENANCE
    return {row["run"]: row["cpu"] for row in read_tsv(path)} if path.is_file() else {}


def archive_runs(archive: PathLike, results: PathLike = "results") -> list[str]:
    """Copy every finished run of the grid in ``results/`` (all its files present) that ``archive`` lacks; return
    the runs copied. Each file is written atomically, and a run enters ``runs.tsv`` only once all its files are in.
    """
    archive, results = Path(archive), Path(results)
    manifest = results / "systems.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} is missing: run the workflow (its systems_manifest rule) first")
    runs, collections = _trained_runs(manifest)
    copied = []
    for run in runs:
        names = run_files(run, collections)
        if is_archived(archive, run, collections) or not all((results / name).is_file() for name in names):
            continue
        for name in names:
            with atomic_path(archive / name) as tmp:
                shutil.copyfile(results / name, tmp)
        copied.append(run)
    if copied:
        _record(archive, copied)
    return copied


def _record(archive: Path, runs: Sequence[str]) -> None:
    path = archive / PROVENANCE
    rows = read_tsv(path) if path.is_file() else []
    archived = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    commit, cpu = workflow_version(exclude=[archive])["git_commit"] or "", cpu_description()
    rows = [row for row in rows if row["run"] not in runs]
    rows += [{"run": run, "archived": archived, "commit": commit, "cpu": cpu} for run in runs]
    write_tsv(path, PROVENANCE_COLUMNS, ([row[column] for column in PROVENANCE_COLUMNS]
                                         for row in sorted(rows, key=lambda row: row["run"])))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archive", type=Path, help="the archive folder (the config's `archive`)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the workflow's results folder")
    args = parser.parse_args(argv)
    copied = archive_runs(args.archive, args.results)
    print(f"archived {len(copied)} run(s) in {args.archive}" + "".join(f"\n  {run}" for run in copied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
