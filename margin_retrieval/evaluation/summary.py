"""One machine-readable result per system and collection: the measures, the run's configuration, seed and version.

The shape follows what MTEB and BEIR users script against: ``scores["test"]`` is a list with one dict of
``main_score`` and snake-case measure keys (``ndcg_at_10``, ``mrr_at_10``, ``recall_at_100``), next to the exact
ir_measures names and definitions, the system's experiment columns, the configuration that produced it and the
workflow version (package version and git commit), so a summary can be compared without this workflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Sequence

from margin_retrieval.jobs.io import read_json, write_json

SCHEMA = "margin-retrieval/summary/v1"
MAIN_MEASURE = "nDCG@10"
# ir_measures measure name -> MTEB/BEIR key stem.
_MTEB_STEMS = {"nDCG": "ndcg", "RR": "mrr", "R": "recall", "P": "precision", "AP": "map", "Judged": "judged"}
_MEASURE = re.compile(r"(?P<name>[A-Za-z]+)(?P<params>\(.*\))?(@(?P<cutoff>\d+))?")


def mteb_key(measure: str) -> str:
    """``nDCG@10`` -> ``ndcg_at_10``, ``RR(rel=2)@10`` -> ``mrr_rel_2_at_10``; unknown names are snake-cased."""
    match = _MEASURE.fullmatch(measure)
    if not match:
        return re.sub(r"\W+", "_", measure).strip("_").lower()
    key = _MTEB_STEMS.get(match["name"], match["name"].lower())
    if match["params"]:
        key += "_" + re.sub(r"\W+", "_", match["params"]).strip("_").lower()
    return key + (f"_at_{match['cutoff']}" if match["cutoff"] else "")


def workflow_version(exclude: Sequence[str | os.PathLike] = ()) -> dict:
    """The installed package version and, in a git checkout, its commit (``git_commit``)."""
    try:
        version = importlib.metadata.version("margin-retrieval")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"package": version, "git_commit": git_commit(Path(__file__).resolve().parents[2], exclude)}


def git_commit(repo: Path, exclude: Sequence[str | os.PathLike] = ()) -> str | None:
    """The commit checked out in ``repo``, with ``-dirty`` for local changes to tracked files outside the paths in
    ``exclude`` (an archive records the code its runs came from, not its own growing files); None outside git."""
    if not (repo / ".git").exists():
        return None
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if not head.stdout.strip():
        return None
    excluded = [f":(exclude){inside}" for inside in (_inside(path, repo) for path in exclude) if inside]
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", ".",
                             *excluded], capture_output=True, text=True)
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return head.stdout.strip() + ("-dirty" if dirty else "")


def _inside(path: str | os.PathLike, repo: Path) -> str | None:
    """``path`` relative to the checkout ``repo``, or None when it lies outside."""
    try:
        return Path(path).resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return None


def _training_summary(train_log: str | None) -> dict | None:
    """The ``end`` event of a training log (best step, best validation value, why it stopped)."""
    if not train_log:
        return None
    events = [json.loads(line) for line in Path(train_log).read_text().splitlines()]
    end = next((event for event in reversed(events) if event["event"] == "end"), None)
    return None if end is None else {key: end[key] for key in ("best_step", "best_value", "stopped_reason", "step",
                                                                "triples_seen", "seconds") if key in end}


def summarize(aggregate_path: str, collection: str, collection_spec: dict, system: dict, run_config: dict,
              train_log: str | None = None) -> dict:
    """The summary dict of one evaluated system on one collection (see the module docstring)."""
    aggregate = read_json(aggregate_path)
    definitions = aggregate.get("definitions", {})
    measures = {name: aggregate[name] for name in definitions}
    main = MAIN_MEASURE if MAIN_MEASURE in measures else next(iter(measures))
    scores = {"main_score": measures[main], "main_measure": main, "hf_subset": "default",
              **{mteb_key(name): value for name, value in measures.items()}}
    return {
        "schema": SCHEMA,
        "task_name": collection,
        "dataset": collection_spec,
        "system": system,
        "scores": {"test": [scores]},
        "measures": measures,
        "definitions": definitions,
        "judged_queries": aggregate.get("judged_queries"),
        "crosscheck_agrees": all(check["agree"] for check in aggregate.get("crosscheck", {}).values()),
        "training": _training_summary(train_log),
        "seed": {"training": run_config.get("training", {}).get("seed"),
                 "train_data": run_config.get("train_data", {}).get("seed")},
        "config": run_config,
        "version": workflow_version(),
    }


def write_summary(out_path: str, **kwargs) -> dict:
    summary = summarize(**kwargs)
    write_json(out_path, summary)
    return summary
