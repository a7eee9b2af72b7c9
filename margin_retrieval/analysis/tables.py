"""Rendering of the main results tables: Markdown (for the README), LaTeX (booktabs; written by hand, so neither
jinja2 nor tabulate is needed) and TSV. The numbers come from ``numbers.significance.main_table``; ``build_tables``
is the step the Snakemake script runs.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import pandas as pd

from margin_retrieval.analysis.numbers.seeds import CONFIDENCE
from margin_retrieval.analysis.numbers.significance import DEFAULT_MEASURES, main_table
from margin_retrieval.analysis.results import read_per_query, read_results
from margin_retrieval.analysis.systems import read_manifest
from margin_retrieval.jobs.io import atomic_path

SIGNIFICANT, EQUIVALENT = "†", "‡"
PathLike = str | os.PathLike


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _fmt_p(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mean_cell(row: Mapping, measure: str) -> str:
    """The mean over seeds, with the interval's half-width when there are several seeds."""
    cell = _fmt(row[measure])
    low, high = row[f"{measure} ci_low"], row[f"{measure} ci_high"]
    if not (math.isnan(low) or math.isnan(high)):
        cell += f" ± {(high - low) / 2:.3f}"
    return cell


def _explanation(table: pd.DataFrame) -> str:
    attrs = table.attrs
    seeds = ""
    if attrs.get("max_seeds", 1) > 1:
        seeds = (f"Values are means over seeds ± the half-width of the {100 * CONFIDENCE:g}% t interval over "
                 "seeds (n − 1 degrees of freedom); the tests use per-query scores averaged over seeds. ")
    if not attrs.get("references"):
        return (f"{attrs.get('collection')}: no reference system is configured or trained, so no significance "
                f"or equivalence tests are reported. {seeds}").strip()
    if len(attrs["references"]) == 1:
        against = f"Reference: {attrs['reference_labels'][0]}. "
    else:
        against = ("Each model's systems are compared with its own reference: "
                   + "; ".join(attrs["reference_labels"]) + ". ")
    return (
        f"Collection {attrs['collection']}, {attrs.get('n_queries')} queries. {against}{seeds}"
        f"p: two-sided paired t-test on per-query {attrs['test_measure']} against the reference, Holm-corrected "
        f"over the {int(table['compared_with'].astype(bool).sum())} compared systems; {SIGNIFICANT} = "
        f"significantly different (p < {attrs['alpha']:g}). TOST p: paired two one-sided tests of equivalence "
        f"with the reference within ±{attrs['margin']:g} {attrs['test_measure']}; {EQUIVALENT} = equivalent "
        f"(TOST p < {attrs['alpha']:g})."
    )


def _cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    attrs = table.attrs
    measures = attrs["measures"]
    with_seeds = attrs.get("max_seeds", 1) > 1
    header = ["System", *(["Seeds"] if with_seeds else []), *measures, "p (Holm)",
              f"TOST p (±{attrs['margin']:g})", "Equivalent"]
    body = []
    for row in table.to_dict("records"):
        cells = [row["label"] + (" (reference)" if row["reference"] else "")]
        cells += [str(row["n_seeds"]) if row["kind"] == "trained" else "–"] if with_seeds else []
        for measure in measures:
            cell = _mean_cell(row, measure)
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
                  "−": "--", "<": r"$<$", ">": r"$>$"}


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


def overview_latex(tables: Sequence[pd.DataFrame]) -> str:
    header, body = _overview_cells(tables)
    lines = [r"\begin{table}[t]", r"\centering",
             r"\caption{" + latex_escape(f"{tables[0].attrs['test_measure']} on every collection; markers and "
                                          "intervals as in each collection's table.") + "}",
             r"\label{tab:main-overview}", r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(map(latex_escape, header)) + r" \\", r"\midrule"]
    lines += [" & ".join(map(latex_escape, cells)) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _overview_cells(tables: Sequence[pd.DataFrame]) -> tuple[list[str], list[list[str]]]:
    """One row per system, one column per collection: the test measure with its interval and markers."""
    measure = tables[0].attrs["test_measure"]
    with_seeds = any(t.attrs.get("max_seeds", 1) > 1 for t in tables)
    header = ["System", *(["Seeds"] if with_seeds else []),
              *(f"{measure} {t.attrs['collection']}" for t in tables)]
    rows: dict[str, list[str]] = {}
    by_collection = [{row["system"]: row for row in t.to_dict("records")} for t in tables]
    for t in tables:
        for row in t.to_dict("records"):
            if row["system"] in rows:
                continue
            cells = [row["label"] + (" (reference)" if row["reference"] else "")]
            cells += [str(row["n_seeds"]) if row["kind"] == "trained" else "–"] if with_seeds else []
            for rows_here in by_collection:
                other = rows_here.get(row["system"])
                cells.append("–" if other is None else _mean_cell(other, measure)
                             + (SIGNIFICANT if other["significant"] else "")
                             + (EQUIVALENT if other["equivalent"] else ""))
            rows[row["system"]] = cells
    return header, list(rows.values())


def overview_markdown(tables: Sequence[pd.DataFrame]) -> str:
    """The test measure of every system on every collection side by side (the per-collection tables follow)."""
    header, body = _overview_cells(tables)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in body]
    return ("\n".join(lines) + "\n\nMarkers and intervals as in each collection's table below ("
            f"{SIGNIFICANT}: different from the reference, {EQUIVALENT}: equivalent to it).\n")


def write_markdown(tables: Sequence[pd.DataFrame], path: PathLike) -> None:
    parts = [f"### {table.attrs['collection']}\n\n{table_markdown(table)}" for table in tables]
    if len(tables) > 1:
        measure = tables[0].attrs["test_measure"]
        parts.insert(0, f"### {measure} on every collection\n\n{overview_markdown(tables)}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) if parts else "No results.\n")


def write_latex(tables: Sequence[pd.DataFrame], path: PathLike) -> None:
    """LaTeX for ``\\input``; needs ``\\usepackage{booktabs}`` in the preamble."""
    parts = [table_latex(table) for table in tables]
    if len(tables) > 1:
        parts.insert(0, overview_latex(tables))
    with atomic_path(path) as tmp:
        tmp.write_text("% Generated by margin_retrieval.analysis.tables; needs \\usepackage{booktabs}.\n"
                       + "\n".join(parts))


def write_table_tsv(tables: Sequence[pd.DataFrame], path: PathLike) -> None:
    """All main tables in one machine-readable TSV (with the collection, margin and alpha per row)."""
    frames = [t.assign(collection=t.attrs["collection"], margin=t.attrs["margin"], alpha=t.attrs["alpha"],
                       seeds=t["seeds"].map(lambda seeds: ",".join(map(str, seeds))))
              for t in tables]
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    with atomic_path(path) as tmp:
        combined.to_csv(tmp, sep="\t", index=False, na_rep="")


def build_tables(manifest_path: PathLike, results_path: PathLike, analysis: Mapping,
                 measures: Mapping[str, Sequence[str]], markdown_path: PathLike, latex_path: PathLike,
                 tsv_path: PathLike | None = None) -> list[pd.DataFrame]:
    """Main tables for every collection of ``results.tsv``, with each collection's configured ``measures``
    (collection -> list; DEFAULT_MEASURES where absent), in the order of ``measures`` (the config's); with several
    collections an overview of the test measure on all of them comes first. The per-query files are the manifest's; ``analysis`` is
    the config's ``analysis`` section (reference_objective, alpha, equivalence_margin)."""
    manifest = read_manifest(manifest_path)
    results = read_results(results_path)
    tables = []
    present = list(results["collection"].unique())
    for collection in [c for c in measures if c in present] + sorted(c for c in present if c not in measures):
        records = manifest[manifest["collection"] == collection]
        per_query = {row["system"]: read_per_query(row["per_query"]) for row in records.to_dict("records")}
        tables.append(main_table(results, per_query, analysis.get("reference_objective", "margin_mse"),
                                 alpha=analysis.get("alpha", 0.05), margin=analysis.get("equivalence_margin", 0.01),
                                 collection=collection, measures=measures.get(collection) or DEFAULT_MEASURES))
    write_markdown(tables, markdown_path)
    write_latex(tables, latex_path)
    if tsv_path is not None:
        write_table_tsv(tables, tsv_path)
    return tables
