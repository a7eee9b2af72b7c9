"""Which learning rate each objective trains best at, chosen on validation (never on test): the learning-rate group
trains one setting (objective, in-batch, τ, ...) at several rates; the rate with the highest best validation nDCG@10
(mean over seeds) is that setting's choice, which the config then names in ``training.learning_rates``."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import pandas as pd

from margin_retrieval.analysis.numbers.train_logs import best_value
from margin_retrieval.analysis.results import write_frame
from margin_retrieval.analysis.systems import VARIANT_COLUMNS, blank

SETTING_COLUMNS = [c for c in VARIANT_COLUMNS if c not in ("kind", "lr")]
TABLE_COLUMNS = [*SETTING_COLUMNS, "lr", "seeds", "best_validation", "chosen"]


def learning_rate_table(runs: Sequence[Mapping]) -> pd.DataFrame:
    """One row per setting and learning rate, for the settings trained at more than one rate: the seeds, the mean
    best validation over them, and whether it is the setting's choice (the highest; a tie goes to the smaller rate)."""
    records = [{**{c: run.get(c) for c in SETTING_COLUMNS}, "lr": run.get("lr"), "value": best_value(run)}
               for run in runs if not blank(run.get("lr"))]
    if not records:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    frame = pd.DataFrame(records)
    # dropna=False: the τ of a non-static run is NaN, and its runs still form one setting.
    table = (frame.groupby([*SETTING_COLUMNS, "lr"], sort=True, dropna=False)["value"].agg(["count", "mean"])
             .reset_index().rename(columns={"count": "seeds", "mean": "best_validation"}))
    table = table[table.groupby(SETTING_COLUMNS, dropna=False)["lr"].transform("nunique") > 1]
    if table.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    best = table.sort_values([*SETTING_COLUMNS, "best_validation", "lr"], ascending=[True] * len(SETTING_COLUMNS)
                             + [False, True]).groupby(SETTING_COLUMNS, dropna=False).head(1).index
    table["chosen"] = table.index.isin(best)
    return table[TABLE_COLUMNS].reset_index(drop=True)


def write_learning_rate_table(runs: Sequence[Mapping], path: str | os.PathLike) -> None:
    write_frame(learning_rate_table(runs), path)
