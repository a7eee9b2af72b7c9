"""Expand the config's named experiment groups into one row per training run (the `Paramspace` table).

A group is a list of grids; a grid maps a column to a value or a list of values, and lists are crossed.
Rows repeated across groups (the full-data adaptive run belongs to several) become one training job.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

COLUMNS = ("model", "objective", "in_batch", "tau", "fraction", "batching")
OBJECTIVES = ("static", "adaptive", "distributed", "margin_mse", "infonce")
IN_BATCH = ("false", "true", "textbook")
MARGIN_OBJECTIVES = ("static", "adaptive", "distributed")
BATCHINGS = ("random", "clustered")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _in_batch_name(value) -> str:
    name = str(value).lower()
    if name not in IN_BATCH:
        raise ValueError(f"in_batch must be one of {IN_BATCH}, got {value!r}")
    return name


def _row(group: str, grid_values: dict, default_models: list[str]) -> dict:
    objective = grid_values["objective"]
    if objective not in OBJECTIVES:
        raise ValueError(f"experiments.{group}: objective must be one of {OBJECTIVES}, got {objective!r}")
    in_batch = _in_batch_name(grid_values.get("in_batch", False))
    if in_batch != "false" and objective not in MARGIN_OBJECTIVES:
        raise ValueError(f"experiments.{group}: in_batch applies to margin objectives only, not {objective!r}")
    if objective == "distributed" and in_batch != "false":
        raise ValueError(f"experiments.{group}: the distributed target cannot be combined with in_batch")
    tau = grid_values.get("tau")
    if objective == "static":
        if tau is None or isinstance(tau, bool) or not isinstance(tau, (int, float)):
            raise ValueError(f"experiments.{group}: a static margin needs a numeric tau, got {tau!r}")
        tau_name = f"{float(tau):g}"
    elif tau is not None:
        raise ValueError(f"experiments.{group}: tau is only meaningful for the static objective, not {objective!r}")
    else:
        tau_name = "none"
    fraction = grid_values.get("fraction", 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"experiments.{group}: fraction must be in (0, 1], got {fraction!r}")
    batching = grid_values.get("batching", "random")
    if batching not in BATCHINGS:
        raise ValueError(f"experiments.{group}: batching must be one of {BATCHINGS}, got {batching!r}")
    model = grid_values.get("model", default_models[0] if len(default_models) == 1 else None)
    return {
        "model": model,
        "objective": objective,
        "in_batch": in_batch,
        "tau": tau_name,
        "fraction": f"{float(fraction):g}",
        "batching": batching,
    }


def expand_experiments(experiments: dict, students: list[str]) -> pd.DataFrame:
    """One row per distinct training run; every value is a string so that paths are stable."""
    rows = []
    for group, grids in experiments.items():
        for grid in grids:
            unknown = set(grid) - set(COLUMNS)
            if unknown:
                raise ValueError(f"experiments.{group}: unknown column(s) {sorted(unknown)}; allowed: {COLUMNS}")
            if "objective" not in grid:
                raise ValueError(f"experiments.{group}: every grid needs an objective")
            grid = {"model": students, **grid}
            keys = list(grid)
            for values in itertools.product(*(_as_list(grid[key]) for key in keys)):
                row = _row(group, dict(zip(keys, values)), students)
                if row["model"] not in students:
                    raise ValueError(f"experiments.{group}: model {row['model']!r} is not a configured student {students}")
                rows.append({**row, "group": group})
    if not rows:
        raise ValueError("experiments: the configuration defines no training run")
    table = pd.DataFrame(rows, columns=[*COLUMNS, "group"])
    groups = table.groupby(list(COLUMNS), sort=False)["group"].agg(lambda g: ",".join(dict.fromkeys(g)))
    return groups.reset_index().sort_values(list(COLUMNS), kind="stable").reset_index(drop=True)


def run_description(row: dict) -> dict:
    """Typed view of one run (tau as float or None, fraction as float) for training and analysis."""
    return {
        "model": row["model"],
        "objective": row["objective"],
        "in_batch": row["in_batch"],
        "tau": None if row["tau"] in ("none", None) else float(row["tau"]),
        "fraction": float(row["fraction"]),
        "batching": row.get("batching", "random"),
    }


def fraction_size(n: int, fraction: float) -> int:
    return max(1, math.ceil(fraction * n))
