"""How each training run ended, and whether validation ranks runs as the test queries do.

One row per trained run: its steps, the step cap of its job (``max_epochs`` x steps per epoch, or ``max_steps``),
why it stopped (``early_stopping``: patience ran out; ``max_steps``: the cap came first), the best validation
nDCG@10 and its step (the exported model), and the test nDCG@10 of that model on each collection.

The agreement is Spearman's rank correlation between best validation value and test value over the runs of one
collection. Validation selects checkpoints and the best static τ, so a low correlation says validation cannot tell
the runs apart the way the test queries do; it is reported, never used to choose anything.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import pandas as pd
from scipy import stats as sps

from margin_retrieval.jobs.io import write_json
from margin_retrieval.analysis.numbers.train_logs import best_value, total_steps
from margin_retrieval.analysis.results import TEST_MEASURE, write_frame

PathLike = str | os.PathLike
STOP_REASONS = ("early_stopping", "max_steps")


def run_endings(runs: Sequence[Mapping], results: pd.DataFrame) -> pd.DataFrame:
    """One row per trained run x collection: ``system``, ``label``, ``steps``, ``step_cap``, ``stopped_reason``,
    ``best_step``, ``best_validation``, ``kept_untrained`` (the exported model is the untrained one: no validation
    beat step 0, by more than ``training.min_delta``), ``collection``, ``test`` (nDCG@10 of the exported model)."""
    test = results[results["measure"] == TEST_MEASURE]
    rows = []
    for run in runs:
        end = run.get("end") or {}
        own = test[test["system"] == run["system"]]
        base = {"system": run["system"], "label": run["label"], "seed": run.get("seed", 0),
                "steps": total_steps(run), "step_cap": (run.get("start") or {}).get("total_steps"),
                "stopped_reason": end.get("stopped_reason", "unfinished"), "best_step": end.get("best_step"),
                "best_validation": best_value(run),
                # Logs written before the end event said so: best step 0 is the untrained model as well.
                "kept_untrained": bool(end.get("kept_untrained", end.get("best_step") == 0))}
        rows += [{**base, "collection": row["collection"], "test": float(row["value"])}
                 for row in own.to_dict("records")] or [{**base, "collection": "", "test": math.nan}]
    return pd.DataFrame(rows)


def agreement(endings: pd.DataFrame) -> dict:
    """Per collection: Spearman's rho (and its p-value) between best validation and test nDCG@10 over the runs
    (None when undefined), and how many runs ended each way."""
    runs = endings.drop_duplicates("system")
    counts = {reason: int((runs["stopped_reason"] == reason).sum()) for reason in STOP_REASONS}
    out = {"n_runs": len(runs), "stopped": counts, "collections": {}}
    for collection, group in endings[endings["collection"] != ""].groupby("collection"):
        group = group.dropna(subset=["best_validation", "test"])
        if len(group) < 3 or group["best_validation"].nunique() < 2 or group["test"].nunique() < 2:
            rho, p = None, None  # undefined: too few runs or a constant column
        else:
            result = sps.spearmanr(group["best_validation"], group["test"])
            rho, p = float(result.statistic), float(result.pvalue)
        out["collections"][collection] = {"n_runs": len(group), "spearman": rho, "p_value": p}
    return out


def write_training_summary(runs: Sequence[Mapping], results: pd.DataFrame, tsv: PathLike, json: PathLike) -> None:
    """The endings table (TSV, runs in system order) and the agreement (JSON), each written atomically."""
    endings = run_endings(runs, results).sort_values(["collection", "system"])
    write_frame(endings, tsv)
    write_json(json, agreement(endings))
