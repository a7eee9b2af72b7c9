"""The results table (every system x collection x measure) and the main results table with significance tests.

``collect_results`` builds ``results/tables/results.tsv`` from the aggregate evaluation files. ``main_table``
adds, per system, a paired t-test against the reference system (Holm-corrected across the systems of one
collection) and a paired TOST equivalence test with a stated nDCG@10 margin. The writers render Markdown (for the
README) and LaTeX (booktabs; written by hand, so neither jinja2 nor tabulate is needed).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from margin_retrieval.analysis import stats
from margin_retrieval.io import atomic_path, read_json, write_tsv

MEASURES = ("nDCG@10", "RR@10", "R@100", "R@1000")
TEST_MEASURE = "nDCG@10"
RESULT_COLUMNS = ("system", "kind", "model", "objective", "in_batch", "tau", "fraction", "collection", "measure",
                  "value")
EXPERIMENT_COLUMNS = ("kind", "model", "objective", "in_batch", "tau", "fraction")
OBJECTIVE_ORDER = ("margin_mse", "infonce", "static", "adaptive", "distributed")
OBJECTIVE_NAMES = {"static": "static margin", "adaptive": "adaptive margin", "distributed": "distributed margin",
                   "margin_mse": "Margin-MSE", "infonce": "InfoNCE"}
IN_BATCH_NAMES = {"true": "in-batch", "textbook": "in-batch, textbook"}
SIGNIFICANT, EQUIVALENT = "†", "‡"

PathLike = str | os.PathLike


# -- the long results table ------------------------------------------------------------------------------------
def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):g}"


def measures_of(aggregate: Mapping) -> dict[str, float]:
    """The measure values of an aggregate evaluation JSON: its ``measures`` block, or (flat layout) every numeric
    top-level entry except the bookkeeping counts ``judged_*``."""
    if isinstance(aggregate.get("measures"), Mapping):
        return dict(aggregate["measures"])
    return {key: value for key, value in aggregate.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.startswith("judged_")}


def collect_results(eval_jsons: Sequence[PathLike], systems: Sequence[Mapping]) -> pd.DataFrame:
    """One row per system x collection x measure.

    ``systems[i]`` describes ``eval_jsons[i]`` = ``results/eval/{collection}/{system}.json``: keys ``system``,
    ``collection``, ``kind``, ``model`` and, for trained systems, ``objective``, ``in_batch``, ``tau`` and
    ``fraction``. The path must end in ``{collection}/{system}.json`` (guards the alignment).
    """
    if len(eval_jsons) != len(systems):
        raise ValueError(f"{len(eval_jsons)} evaluation files but {len(systems)} system descriptions")
    rows = []
    for path, system in zip(eval_jsons, systems):
        expected = Path(system["collection"]) / f"{system['system']}.json"
        if not Path(path).as_posix().endswith(expected.as_posix()):
            raise ValueError(f"evaluation file {path} does not belong to {expected}: inputs and params misaligned")
        measures = measures_of(read_json(path))
        for measure, value in measures.items():
            rows.append({
                "system": system["system"],
                "kind": system.get("kind", system["system"].split("/", 1)[0]),
                "model": system.get("model", ""),
                "objective": system.get("objective") or "",
                "in_batch": "" if system.get("in_batch") is None else str(system["in_batch"]).lower(),
                "tau": math.nan if system.get("tau") is None else float(system["tau"]),
                "fraction": math.nan if system.get("fraction") is None else float(system["fraction"]),
                "collection": system["collection"],
                "measure": measure,
                "value": float(value),
            })
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def write_results(results: pd.DataFrame, path: PathLike) -> None:
    rows = ([row["system"], row["kind"], row["model"], row["objective"], row["in_batch"], _number(row["tau"]),
             _number(row["fraction"]), row["collection"], row["measure"], repr(float(row["value"]))]
            for row in results.to_dict("records"))
    write_tsv(path, RESULT_COLUMNS, rows)


def read_results(path: PathLike) -> pd.DataFrame:
    """``results.tsv`` with string columns kept as strings (in_batch stays "false"/"true"/"textbook")."""
    text = ["system", "kind", "model", "objective", "in_batch", "collection", "measure"]
    table = pd.read_csv(path, sep="\t", dtype={c: str for c in text}, keep_default_na=False,
                        na_values={"tau": [""], "fraction": [""], "value": [""]})
    for column in ("tau", "fraction", "value"):
        table[column] = pd.to_numeric(table[column]).astype(float)
    return table


def read_per_query(path: PathLike, measure: str = TEST_MEASURE) -> pd.Series:
    """Per-query scores of one measure from ``results/eval/{collection}/{system}.tsv``, indexed by query id."""
    table = pd.read_csv(path, sep="\t", dtype={"measure": str, "query_id": str}, keep_default_na=False)
    rows = table[table["measure"] == measure]
    if rows.empty:
        raise ValueError(f"{path} has no per-query values of {measure}")
    if rows["query_id"].duplicated().any():
        raise ValueError(f"{path} has duplicated query ids for {measure}")
    return pd.Series(rows["value"].astype(float).to_numpy(), index=rows["query_id"].to_numpy(), name=measure)


# -- systems ------------------------------------------------------------------------------------------------------
def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def variant_label(objective: str, in_batch: str = "false") -> str:
    """The objective's name with its in-batch setting, e.g. "adaptive margin (in-batch)"."""
    label = OBJECTIVE_NAMES.get(objective, str(objective))
    return label + (f" ({IN_BATCH_NAMES[in_batch]})" if in_batch in IN_BATCH_NAMES else "")


def system_label(row: Mapping, with_model: bool = False) -> str:
    """Human-readable name of a system, e.g. "static margin (in-batch) τ=0.2", "adaptive margin, 12.5% data"."""
    if row.get("kind") == "zeroshot" or _blank(row.get("objective")):
        return f"{row.get('model') or row.get('system')} (zero-shot)"
    label = variant_label(row["objective"], "" if _blank(row.get("in_batch")) else str(row["in_batch"]).lower())
    if row["objective"] == "static" and not _blank(row.get("tau")):
        label += f" τ={float(row['tau']):g}"
    if not _blank(row.get("fraction")) and float(row["fraction"]) < 1:
        label += f", {100 * float(row['fraction']):g}% data"
    if with_model and row.get("model"):
        label += f" [{row['model']}]"
    return label


def _sort_key(row: Mapping) -> tuple:
    if row.get("kind") == "zeroshot" or _blank(row.get("objective")):
        return (0, str(row.get("model")), "", 0.0, 0.0)
    objective = row["objective"]
    order = OBJECTIVE_ORDER.index(objective) if objective in OBJECTIVE_ORDER else len(OBJECTIVE_ORDER)
    tau = 0.0 if _blank(row.get("tau")) else float(row["tau"])
    fraction = 1.0 if _blank(row.get("fraction")) else float(row["fraction"])
    return (1 + order, str(row.get("in_batch")), str(row.get("model")), tau, -fraction)


def systems_of(results: pd.DataFrame, collection: str | None = None) -> pd.DataFrame:
    """One row per system (experiment columns only), in table order."""
    if collection is not None:
        results = results[results["collection"] == collection]
    first = results.drop_duplicates("system")[["system", *EXPERIMENT_COLUMNS]]
    records = sorted(first.to_dict("records"), key=_sort_key)
    return pd.DataFrame(records, columns=["system", *EXPERIMENT_COLUMNS])


def reference_system(results: pd.DataFrame, reference: str, collection: str | None = None,
                     model: str | None = None) -> str | None:
    """The system the tests compare against.

    ``reference`` is an objective (then: the run of that objective without in-batch negatives at the largest
    training fraction, e.g. full-data Margin-MSE) or a system name such as ``zeroshot/minilm-l6``. None when the
    configuration has no such system.
    """
    if collection is not None:
        results = results[results["collection"] == collection]
    if reference in set(results["system"]):
        return reference
    runs = systems_of(results)
    runs = runs[(runs["objective"] == reference) & (runs["in_batch"].isin(["false", ""]))]
    if model is not None:
        runs = runs[runs["model"] == model]
    if runs.empty:
        return None
    runs = runs.sort_values(["fraction", "system"], ascending=[False, True], kind="stable")
    return str(runs.iloc[0]["system"])


# -- the main table -----------------------------------------------------------------------------------------------
def main_table(results: pd.DataFrame, per_query: Mapping[str, Mapping[str, float]], reference: str | None,
               alpha: float, margin: float, collection: str | None = None,
               measures: Sequence[str] = MEASURES) -> pd.DataFrame:
    """Per system: the measures, a paired t-test on per-query nDCG@10 against ``reference`` (Holm-corrected over
    the other systems), and a paired TOST equivalence test with margin ``margin`` (nDCG@10 points).

    ``per_query`` maps system name -> per-query nDCG@10 (query id -> value) for ``collection``. Without a
    reference (None) the test columns are empty. Metadata (reference, alpha, margin, ...) is in ``table.attrs``.
    """
    if collection is None:
        collections = sorted(results["collection"].unique())
        if len(collections) != 1:
            raise ValueError(f"results hold several collections {collections}; name one")
        collection = collections[0]
    rows = results[results["collection"] == collection]
    systems = systems_of(rows)
    if reference is not None and reference not in set(systems["system"]):
        raise ValueError(f"reference system {reference!r} has no results on {collection}")
    with_model = systems.loc[systems["kind"] == "trained", "model"].nunique() > 1
    values = rows.pivot_table(index="system", columns="measure", values="value", aggfunc="first")
    records, raw_p = [], {}
    for system in systems.to_dict("records"):
        name = system["system"]
        record = {**system, "label": system_label(system, with_model)}
        for measure in measures:
            record[measure] = (float(values.loc[name, measure])
                               if measure in values.columns and name in values.index else math.nan)
        record.update(reference=name == reference, mean_diff=math.nan, p_value=math.nan, p_holm=math.nan,
                      significant=False, tost_p=math.nan, equivalent=False)
        if reference is not None and name != reference:
            for needed in (name, reference):
                if needed not in per_query:
                    raise ValueError(f"no per-query scores for {needed} on {collection}")
            test = stats.paired_ttest(per_query[name], per_query[reference])
            tost = stats.tost_paired(per_query[name], per_query[reference], margin=margin, alpha=alpha)
            record.update(mean_diff=test["mean_diff"], p_value=test["p_value"], tost_p=tost["p_value"],
                          equivalent=tost["equivalent"])
            raw_p[name] = test["p_value"]
        records.append(record)
    corrected = stats.holm(raw_p, alpha=alpha)
    for record in records:
        if record["system"] in corrected:
            record["p_holm"] = corrected[record["system"]]["p_holm"]
            record["significant"] = corrected[record["system"]]["reject"]
    columns = ["system", "label", *EXPERIMENT_COLUMNS, *measures, "reference", "mean_diff", "p_value", "p_holm",
               "significant", "tost_p", "equivalent"]
    table = pd.DataFrame(records, columns=columns)
    table.attrs.update(
        collection=collection, reference=reference, alpha=float(alpha), margin=float(margin),
        measures=list(measures), test_measure=TEST_MEASURE,
        reference_label=None if reference is None else table.loc[table["system"] == reference, "label"].iloc[0],
        n_queries=None if reference is None or reference not in per_query else len(per_query[reference]),
    )
    return table


# -- rendering ----------------------------------------------------------------------------------------------------
def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _fmt_p(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _explanation(table: pd.DataFrame) -> str:
    attrs = table.attrs
    if attrs.get("reference") is None:
        return (f"{attrs.get('collection')}: no reference system is configured or trained, so no significance "
                "or equivalence tests are reported.")
    return (
        f"Collection {attrs['collection']}, {attrs.get('n_queries')} queries. "
        f"Reference: {attrs['reference_label']}. "
        f"p: two-sided paired t-test on per-query {attrs['test_measure']} against the reference, Holm-corrected "
        f"over the {int((~table['reference']).sum())} other systems; {SIGNIFICANT} = significantly different "
        f"(p < {attrs['alpha']:g}). TOST p: paired two one-sided tests of equivalence with the reference within "
        f"±{attrs['margin']:g} {attrs['test_measure']}; {EQUIVALENT} = equivalent (TOST p < {attrs['alpha']:g})."
    )


def _cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    attrs = table.attrs
    measures = attrs["measures"]
    header = ["System", *measures, "p (Holm)", f"TOST p (±{attrs['margin']:g})", "Equivalent"]
    body = []
    for row in table.to_dict("records"):
        cells = [row["label"] + (" (reference)" if row["reference"] else "")]
        for measure in measures:
            cell = _fmt(row[measure])
            if measure == attrs["test_measure"]:
                cell += (SIGNIFICANT if row["significant"] else "") + (EQUIVALENT if row["equivalent"] else "")
            cells.append(cell)
        tested = not math.isnan(row["tost_p"])
        cells += [_fmt_p(row["p_holm"]), _fmt_p(row["tost_p"]),
                  ("yes" if row["equivalent"] else "no") if tested else "–"]
        body.append(cells)
    return header, body


def table_markdown(table: pd.DataFrame) -> str:
    header, body = _cells(table)
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, header)) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(map(escape, cells)) + " |" for cells in body]
    return "\n".join(lines) + "\n\n" + _explanation(table) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"τ": r"$\tau$", "±": r"$\pm$", "†": r"$^\dagger$", "‡": r"$^\ddagger$", "–": "--",
                  "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    text = "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))
    return "".join(_LATEX_SYMBOLS.get(char, char) for char in text)


def table_latex(table: pd.DataFrame, label: str | None = None) -> str:
    """A booktabs ``table`` environment; the caption explains the markers."""
    header, body = _cells(table)
    label = label or f"tab:main-{table.attrs['collection']}"
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{Main results. " + latex_escape(_explanation(table)) + "}",
        r"\label{" + label.replace("_", "-") + "}",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(map(latex_escape, header)) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(map(latex_escape, cells)) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_markdown(tables: Sequence[pd.DataFrame], path: PathLike) -> None:
    parts = [f"### {table.attrs['collection']}\n\n{table_markdown(table)}" for table in tables]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) if parts else "No results.\n")


def write_latex(tables: Sequence[pd.DataFrame], path: PathLike) -> None:
    """LaTeX for ``\\input``; needs ``\\usepackage{booktabs}`` in the preamble."""
    parts = [table_latex(table) for table in tables]
    with atomic_path(path) as tmp:
        tmp.write_text("% Generated by margin_retrieval.analysis.tables; needs \\usepackage{booktabs}.\n" + "\n".join(parts))


def write_table_tsv(tables: Sequence[pd.DataFrame], path: PathLike) -> None:
    """All main tables in one machine-readable TSV (with the collection, margin and alpha per row)."""
    frames = [t.assign(collection=t.attrs["collection"], margin=t.attrs["margin"], alpha=t.attrs["alpha"])
              for t in tables]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with atomic_path(path) as tmp:
        combined.to_csv(tmp, sep="\t", index=False, na_rep="")


# -- the whole step, for the Snakemake entry point ------------------------------------------------------------------
def build_tables(results_path: PathLike, per_query_paths: Sequence[PathLike], systems: Sequence[Mapping],
                 analysis: Mapping, markdown_path: PathLike, latex_path: PathLike,
                 tsv_path: PathLike | None = None) -> list[pd.DataFrame]:
    """Main tables for every collection of ``results.tsv``.

    ``per_query_paths[i]`` = ``results/eval/{collection}/{system}.tsv`` of ``systems[i]`` (dicts with ``system``
    and ``collection``, the same list ``collect_results`` gets). ``analysis`` is the config's ``analysis`` section
    (reference_objective, alpha, equivalence_margin).
    """
    if len(per_query_paths) != len(systems):
        raise ValueError(f"{len(per_query_paths)} per-query files but {len(systems)} system descriptions")
    results = read_results(results_path)
    per_query: dict[str, dict[str, pd.Series]] = {}
    for path, system in zip(per_query_paths, systems):
        per_query.setdefault(system["collection"], {})[system["system"]] = read_per_query(path)
    tables = []
    for collection in sorted(results["collection"].unique()):
        reference = reference_system(results, analysis.get("reference_objective", "margin_mse"), collection)
        tables.append(main_table(results, per_query.get(collection, {}), reference,
                                 alpha=analysis.get("alpha", 0.05),
                                 margin=analysis.get("equivalence_margin", 0.01), collection=collection))
    write_markdown(tables, markdown_path)
    write_latex(tables, latex_path)
    if tsv_path is not None:
        write_table_tsv(tables, tsv_path)
    return tables
