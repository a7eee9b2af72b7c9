"""The long results table (``figures/results.tsv``: one row per system x collection x measure) and the per-query
score files it is built next to.

``collect_results`` reads the aggregate evaluation file of every record of the systems manifest; each row keeps the
system's experiment columns, so tables and figures select and aggregate from this one table.
"""

from __future__ import annotations

import math

import os
from typing import Mapping

import pandas as pd

from margin_retrieval.analysis.systems import EXPERIMENT_COLUMNS, blank
from margin_retrieval.jobs.io import read_json, write_tsv

PathLike = str | os.PathLike
TEST_MEASURE = "nDCG@10"
RESULT_COLUMNS = ("system", *EXPERIMENT_COLUMNS, "collection", "measure", "value")
TEXT_COLUMNS = ("system", "kind", "model", "objective", "in_batch", "negatives", "batching", "collection", "measure")
NUMBER_COLUMNS = ("tau", "fraction", "lr", "value")


def measures_of(aggregate: Mapping) -> dict[str, float]:
    """The measure values of an aggregate evaluation JSON: its ``measures`` block, or (flat layout) every numeric
    top-level entry except the bookkeeping counts ``judged_*``."""
    if isinstance(aggregate.get("measures"), Mapping):
        return dict(aggregate["measures"])
    return {key: value for key, value in aggregate.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.startswith("judged_")}


def collect_results(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per manifest record x measure of its aggregate evaluation file (``aggregate`` column)."""
    rows = []
    for record in manifest.to_dict("records"):
        if blank(record.get("aggregate")):
            raise ValueError(f"systems manifest: {record['collection']}/{record['system']} has no aggregate file")
        for measure, value in measures_of(read_json(record["aggregate"])).items():
            rows.append({**{c: record[c] for c in RESULT_COLUMNS if c in record}, "measure": measure,
                         "value": float(value)})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _number(value) -> str:
    return "" if blank(value) else f"{float(value):g}"


def _cell(row: Mapping, column: str) -> str:
    if column == "value":
        return repr(float(row["value"]))
    if column in ("tau", "fraction", "lr"):
        return _number(row[column])
    if column == "seed":
        return "" if row["kind"] != "trained" else str(int(row["seed"]))
    return str(row[column])


def write_frame(frame: pd.DataFrame, path: PathLike) -> None:
    """Any table of the analysis as a TSV (header = its columns): empty cells blank, whole floats without ".0"."""
    write_tsv(path, list(frame.columns), ([_plain(value) for value in row] for row in frame.itertuples(index=False)))


def _plain(value) -> str:
    if blank(value):
        return ""
    return f"{value:g}" if isinstance(value, float) and value.is_integer() else str(value)


def write_results(results: pd.DataFrame, path: PathLike) -> None:
    rows = ([_cell(row, column) for column in RESULT_COLUMNS] for row in results.to_dict("records"))
    write_tsv(path, RESULT_COLUMNS, rows)


def read_results(path: PathLike) -> pd.DataFrame:
    """``results.tsv`` with string columns kept as strings (in_batch stays "false"/"true"/"textbook"); a file
    written before the seed/negatives/batching/lr columns existed reads with their defaults (seed 0, lr blank)."""
    table = pd.read_csv(path, sep="\t", dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                        na_values={c: [""] for c in (*NUMBER_COLUMNS, "seed")})
    for column in NUMBER_COLUMNS:
        table[column] = pd.to_numeric(table[column]).astype(float) if column in table else math.nan
    for column in ("negatives", "batching"):
        if column not in table:
            table[column] = ""
    table["seed"] = pd.to_numeric(table["seed"]).fillna(0).astype(int) if "seed" in table else 0
    return table[list(RESULT_COLUMNS)]


def read_per_query(path: PathLike, measure: str = TEST_MEASURE) -> pd.Series:
    """Per-query scores of one measure from ``results/eval/{collection}/{system}.tsv``, indexed by query id."""
    table = pd.read_csv(path, sep="\t", dtype={"measure": str, "query_id": str}, keep_default_na=False)
    rows = table[table["measure"] == measure]
    if rows.empty:
        raise ValueError(f"{path} has no per-query values of {measure}")
    if rows["query_id"].duplicated().any():
        raise ValueError(f"{path} has duplicated query ids for {measure}")
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["query_id"].to_numpy(), name=measure)
