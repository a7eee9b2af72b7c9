"""The systems of a run: the manifest the DAG writes, their experiment columns, names, order and references.

A *system* is one evaluated model (``zeroshot/<model>`` or ``trained/<run>``). A trained run's name may end in a
``/seed~N`` segment; the systems that differ only in the seed form one *variant* (``variant_id`` drops the seed), and
tables and figures report a variant as the mean over its seeds.

The systems manifest (``results/systems.json``, rule ``systems_manifest``) holds one record per collection x system:
its experiment columns and the paths of its evaluation files (and, for trained systems, its training log and
benchmark). Columns a grid does not have yet take single-valued defaults (``normalise``), so the analysis reads
manifests written before and after the ``seed``/``negatives``/``batching`` grid columns existed.
"""

from __future__ import annotations

import math
import os
import re
from typing import Collection, Mapping, Sequence

import pandas as pd

from margin_retrieval.jobs.io import read_json, write_json

PathLike = str | os.PathLike

# Columns that tell variants apart; ``seed`` tells the runs of one variant apart.
VARIANT_COLUMNS = ("kind", "model", "objective", "in_batch", "tau", "fraction", "negatives", "batching", "lr")
EXPERIMENT_COLUMNS = (*VARIANT_COLUMNS, "seed")
PATH_COLUMNS = ("aggregate", "per_query", "train_log", "train_benchmark")
TEXT_COLUMNS = (*PATH_COLUMNS, "cpu")  # read as strings, empty where a system has none
DEFAULT_SEED = 0
DEFAULT_BATCHING = "random"
OBJECTIVE_ORDER = ("margin_mse", "infonce", "static", "adaptive", "distributed")
OBJECTIVE_NAMES = {"static": "static margin", "adaptive": "adaptive margin", "distributed": "distributed margin",
                   "margin_mse": "Margin-MSE", "infonce": "InfoNCE"}
IN_BATCH_NAMES = {"true": "in-batch", "textbook": "in-batch, textbook"}
NEGATIVES_NAMES = {"bm25": "BM25 negatives", "student": "student negatives"}
SEED_SEGMENT = re.compile(r"/seed~[^/]+")


def blank(value) -> bool:
    """True for the empty cells of the tables: None, NaN and ""."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _float(value) -> float:
    return math.nan if blank(value) else float(value)


def normalise(description: Mapping, negatives_default: str = "") -> dict:
    """Typed experiment columns of one system, with the defaults of a grid that lacks a column: one seed (0),
    the configured negative source, random batches. Zero-shot systems keep the training columns empty."""
    row = dict(description)
    kind = row.get("kind") or row["system"].split("/", 1)[0]
    trained = kind == "trained"
    row.update(
        kind=kind, model=str(row.get("model") or ""), objective=str(row.get("objective") or ""),
        in_batch="" if blank(row.get("in_batch")) else str(row["in_batch"]).lower(),
        tau=_float(row.get("tau")), fraction=_float(row.get("fraction")),
        negatives=str(row.get("negatives") or negatives_default) if trained else "",
        batching=str(row.get("batching") or DEFAULT_BATCHING) if trained else "",
        seed=int(row["seed"]) if trained and not blank(row.get("seed")) else DEFAULT_SEED,
        lr=_float(row.get("lr")) if trained else math.nan,  # NaN: a run named before the lr column existed
    )
    return row


def variant_id(system: str) -> str:
    """The system name without its seed segment: ``trained/.../seed~2`` -> ``trained/...``."""
    return SEED_SEGMENT.sub("", system)


# -- the manifest ---------------------------------------------------------------------------------------------------
def write_manifest(path: PathLike, records: Sequence[Mapping], negatives_default: str) -> None:
    """Write the manifest: ``records`` are dicts with ``collection``, ``system``, the experiment columns the grid
    has, and the paths of PATH_COLUMNS. Each (collection, system) must appear once."""
    seen = set()
    for record in records:
        key = (record["collection"], record["system"])
        if key in seen:
            raise ValueError(f"systems manifest: {key} appears twice")
        seen.add(key)
    write_json(path, {"negatives_default": negatives_default, "systems": [dict(r) for r in records]})


def read_manifest(path: PathLike) -> pd.DataFrame:
    """The manifest as a table: one row per collection x system, normalised columns, a ``variant`` column and a
    ``cpu`` column (the CPU an archived run trained on; empty for the rest)."""
    content = read_json(path)
    rows = [normalise(record, content.get("negatives_default", "")) for record in content["systems"]]
    columns = ["collection", "system", "variant", *EXPERIMENT_COLUMNS, *TEXT_COLUMNS]
    frame = pd.DataFrame([{**{c: "" for c in TEXT_COLUMNS}, **row, "variant": variant_id(row["system"])}
                          for row in rows], columns=columns)
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def trained_runs(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per trained system (a run is evaluated on every collection but trained once)."""
    trained = manifest[manifest["kind"] == "trained"]
    return trained.drop_duplicates("system").reset_index(drop=True)


# -- names ------------------------------------------------------------------------------------------------------------
def variant_label(objective: str, in_batch: str = "false") -> str:
    """The objective's name with its in-batch setting, e.g. "adaptive margin (in-batch)"."""
    label = OBJECTIVE_NAMES.get(objective, str(objective))
    return label + (f" ({IN_BATCH_NAMES[in_batch]})" if in_batch in IN_BATCH_NAMES else "")


def varying_columns(rows: pd.DataFrame) -> set[str]:
    """The columns among ``negatives`` and ``batching`` that take several values over the trained rows, and
    ``lr/<objective>`` for each objective trained at several learning rates; labels name them only then, so a grid
    without those columns keeps its short labels."""
    trained = rows[rows["kind"] == "trained"] if len(rows) else rows
    varying = {c for c in ("negatives", "batching") if c in trained and trained[c].nunique() > 1}
    if "lr" in trained and len(trained):
        rates = trained.groupby("objective")["lr"].nunique()
        varying |= {f"lr/{objective}" for objective in rates[rates > 1].index}  # per objective: see system_label
    return varying


def system_label(row: Mapping, with_model: bool = False, varying: Collection[str] = ()) -> str:
    """Human-readable name of a system, e.g. "static margin (in-batch) τ=0.2", "adaptive margin, 12.5% data";
    the columns in ``varying`` (negatives, batching, the objective's lr) are named too, e.g. ", student negatives",
    ", lr 0.0001"."""
    if row.get("kind") == "zeroshot" or blank(row.get("objective")):
        return f"{row.get('model') or row.get('system')} (zero-shot)"
    label = variant_label(row["objective"], "" if blank(row.get("in_batch")) else str(row["in_batch"]).lower())
    if row["objective"] == "static" and not blank(row.get("tau")):
        label += f" τ={float(row['tau']):g}"
    if not blank(row.get("fraction")) and float(row["fraction"]) < 1:
        label += f", {100 * float(row['fraction']):g}% data"
    if "negatives" in varying and not blank(row.get("negatives")):
        label += ", " + NEGATIVES_NAMES.get(row["negatives"], f"{row['negatives']} negatives")
    if "batching" in varying and not blank(row.get("batching")):
        label += f", {row['batching']} batches"
    if f"lr/{row['objective']}" in varying and not blank(row.get("lr")):
        label += f", lr {float(row['lr']):g}"
    if with_model and row.get("model"):
        label += f" [{row['model']}]"
    return label


def sort_key(row: Mapping) -> tuple:
    """Table order: zero-shot first, then objectives in OBJECTIVE_ORDER, in-batch setting, model, τ, fraction
    (largest first), negatives, batching, seed."""
    if row.get("kind") == "zeroshot" or blank(row.get("objective")):
        return (0, str(row.get("model")), "", 0.0, 0.0, "", "", 0)
    objective = row["objective"]
    order = OBJECTIVE_ORDER.index(objective) if objective in OBJECTIVE_ORDER else len(OBJECTIVE_ORDER)
    tau = 0.0 if blank(row.get("tau")) else float(row["tau"])
    fraction = 1.0 if blank(row.get("fraction")) else float(row["fraction"])
    seed = 0 if blank(row.get("seed")) else int(row["seed"])
    return (1 + order, str(row.get("in_batch")), str(row.get("model")), tau, -fraction,
            str(row.get("negatives") or ""), str(row.get("batching") or ""), seed)


def ordered(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` sorted by ``sort_key``."""
    records = sorted(rows.to_dict("records"), key=sort_key)
    return pd.DataFrame(records, columns=rows.columns).reset_index(drop=True)


# -- references -------------------------------------------------------------------------------------------------------
def reference_variant(variants: pd.DataFrame, reference: str, model: str | None = None) -> str | None:
    """The variant the tests compare against, from one row per variant (column ``variant`` or ``system``).

    ``reference`` is a system name (e.g. ``zeroshot/minilm-l6``) or an objective; then: the run of that objective
    without in-batch negatives at the largest training fraction (e.g. full-data Margin-MSE) of ``model``, with the
    configured negatives and random batches when the grid varies them (the first in table order). None when the
    configuration has no such system.
    """
    key = "variant" if "variant" in variants else "system"
    names = set(variants[key])
    if reference in names or variant_id(reference) in names:
        return variant_id(reference)
    runs = variants[(variants["objective"] == reference) & (variants["in_batch"].isin(["false", ""]))]
    if model is not None:
        runs = runs[runs["model"] == model]
    if runs.empty:
        return None
    runs = runs[runs["fraction"] == runs["fraction"].max()]
    random = runs[runs["batching"].isin([DEFAULT_BATCHING, ""])] if "batching" in runs else runs
    return str(ordered(random if len(random) else runs).iloc[0][key])


def references_by_model(variants: pd.DataFrame, reference: str) -> dict[str, str]:
    """Per model with trained variants: its own reference (``reference_variant``); models without one (and the
    zero-shot models that are not students) fall back to the first student's reference under key ""."""
    trained = variants[variants["kind"] == "trained"]
    found = {model: reference_variant(variants, reference, model) for model in sorted(trained["model"].unique())}
    found = {model: name for model, name in found.items() if name is not None}
    fallback = reference_variant(variants, reference)
    if fallback is not None:
        found[""] = next(iter(found.values()), fallback)
    return found


def reference_of(row: Mapping, references: Mapping[str, str]) -> str | None:
    """The reference a system is compared with: its model's, else the fallback."""
    return references.get(str(row.get("model") or ""), references.get(""))
