"""results.tsv builder, main table with tests, Markdown and LaTeX writers on tiny synthetic data."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from margin_retrieval.analysis import stats
from margin_retrieval.analysis.tables import (
    build_tables, collect_results, main_table, measures_of, read_per_query, read_results, reference_system,
    system_label, table_latex, table_markdown, write_results,
)

SYSTEMS = [
    {"system": "zeroshot/small", "kind": "zeroshot", "model": "small"},
    {"system": "trained/model~small/objective~margin_mse/in_batch~false/tau~none/fraction~1",
     "kind": "trained", "model": "small", "objective": "margin_mse", "in_batch": "false", "tau": None,
     "fraction": 1.0},
    {"system": "trained/model~small/objective~static/in_batch~true/tau~0.2/fraction~1",
     "kind": "trained", "model": "small", "objective": "static", "in_batch": "true", "tau": 0.2, "fraction": 1.0},
    {"system": "trained/model~small/objective~adaptive/in_batch~false/tau~none/fraction~0.25",
     "kind": "trained", "model": "small", "objective": "adaptive", "in_batch": "false", "tau": None,
     "fraction": 0.25},
]
REF, STATIC, ADAPTIVE = (s["system"] for s in SYSTEMS[1:])
REPO = Path(__file__).resolve().parents[1]
QUERIES = [f"q{i}" for i in range(20)]


def per_query_scores(seed: int = 0) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, len(QUERIES))
    offsets = {SYSTEMS[0]["system"]: -0.3, REF: 0.0, STATIC: -0.1, ADAPTIVE: 0.001}
    noise = {SYSTEMS[0]["system"]: 0.05, REF: 0.0, STATIC: 0.02, ADAPTIVE: 0.002}
    return {name: pd.Series(np.clip(base + offsets[name] + rng.normal(0, noise[name], len(QUERIES)), 0, 1),
                            index=QUERIES) for name in offsets}


def write_eval(root, collection: str, scores: dict[str, pd.Series]) -> tuple[list, list, list]:
    jsons, tsvs, systems = [], [], []
    for system in SYSTEMS:
        name = system["system"]
        series = scores[name]
        json_path = root / "results/eval" / collection / f"{name}.json"
        tsv_path = json_path.parent / f"{json_path.name[:-5]}.tsv"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        measures = {"nDCG@10": float(series.mean()), "RR@10": float(series.mean()) + 0.1,
                    "R@100": 0.9, "R@1000": 0.95}
        json_path.write_text(json.dumps({"measures": measures, "crosscheck": {}}))
        lines = ["measure\tquery_id\tvalue"]
        for measure in ("nDCG@10", "RR@10"):
            lines += [f"{measure}\t{q}\t{v!r}" for q, v in series.items()]
        tsv_path.write_text("\n".join(lines) + "\n")
        jsons.append(json_path)
        tsvs.append(tsv_path)
        systems.append({**system, "collection": collection})
    return jsons, tsvs, systems


@pytest.fixture
def evaluated(tmp_path):
    scores = per_query_scores()
    jsons, tsvs, systems = write_eval(tmp_path, "test-set", scores)
    return tmp_path, scores, jsons, tsvs, systems


def test_collect_results_round_trip(evaluated):
    root, scores, jsons, _, systems = evaluated
    results = collect_results(jsons, systems)
    assert len(results) == 4 * 4
    write_results(results, root / "results.tsv")
    text = (root / "results.tsv").read_text().splitlines()
    assert text[0].split("\t") == ["system", "kind", "model", "objective", "in_batch", "tau", "fraction",
                                   "collection", "measure", "value"]
    back = read_results(root / "results.tsv")
    zeroshot = back[back["kind"] == "zeroshot"].iloc[0]
    assert zeroshot["objective"] == "" and zeroshot["in_batch"] == "" and math.isnan(zeroshot["tau"])
    static = back[back["system"] == STATIC].iloc[0]
    assert static["in_batch"] == "true" and static["tau"] == 0.2 and static["fraction"] == 1.0
    value = back[(back["system"] == REF) & (back["measure"] == "nDCG@10")]["value"].item()
    assert value == pytest.approx(scores[REF].mean(), abs=0, rel=1e-15)


def test_collect_results_checks_alignment(evaluated):
    _, _, jsons, _, systems = evaluated
    with pytest.raises(ValueError, match="misaligned"):
        collect_results(jsons, list(reversed(systems)))
    with pytest.raises(ValueError, match="evaluation files"):
        collect_results(jsons[:2], systems)


def test_labels_and_reference():
    assert system_label(SYSTEMS[0]) == "small (zero-shot)"
    assert system_label(SYSTEMS[2]) == "static margin (in-batch) τ=0.2"
    assert system_label(SYSTEMS[3]) == "adaptive margin, 25% data"
    results = pd.DataFrame([{**s, "collection": "c", "measure": "nDCG@10", "value": 0.5} for s in SYSTEMS])
    assert reference_system(results, "margin_mse") == REF
    assert reference_system(results, "zeroshot/small") == "zeroshot/small"
    assert reference_system(results, "infonce") is None


def test_main_table_tests_and_holm(evaluated):
    _, scores, jsons, _, systems = evaluated
    results = collect_results(jsons, systems)
    table = main_table(results, scores, REF, alpha=0.05, margin=0.01)
    assert list(table["system"]) == [SYSTEMS[0]["system"], REF, STATIC, ADAPTIVE]
    by_system = table.set_index("system")
    assert by_system.loc[REF, "reference"] and math.isnan(by_system.loc[REF, "p_value"])
    others = [SYSTEMS[0]["system"], STATIC, ADAPTIVE]
    raw = [stats.paired_ttest(scores[s], scores[REF])["p_value"] for s in others]
    assert list(by_system.loc[others, "p_value"]) == pytest.approx(raw)
    assert list(by_system.loc[others, "p_holm"]) == pytest.approx(stats.holm_adjust(raw))
    # Zero-shot and static are far below the reference; adaptive is within 0.01 of it.
    assert by_system.loc[STATIC, "significant"] and not by_system.loc[STATIC, "equivalent"]
    assert by_system.loc[ADAPTIVE, "equivalent"]
    tost = stats.tost_paired(scores[ADAPTIVE], scores[REF], margin=0.01)
    assert by_system.loc[ADAPTIVE, "tost_p"] == pytest.approx(tost["p_value"])
    assert by_system.loc[REF, "nDCG@10"] == pytest.approx(scores[REF].mean())
    assert table.attrs["margin"] == 0.01 and table.attrs["n_queries"] == len(QUERIES)


def test_main_table_without_reference(evaluated):
    _, scores, jsons, _, systems = evaluated
    table = main_table(collect_results(jsons, systems), scores, None, alpha=0.05, margin=0.01)
    assert table["p_value"].isna().all() and not table["equivalent"].any()
    assert "no reference system" in table_markdown(table)


def test_markdown_and_latex(evaluated):
    _, scores, jsons, _, systems = evaluated
    table = main_table(collect_results(jsons, systems), scores, REF, alpha=0.05, margin=0.01)
    markdown = table_markdown(table)
    lines = markdown.splitlines()
    assert lines[0].startswith("| System | nDCG@10 | RR@10 | R@100 | R@1000 | p (Holm) | TOST p (±0.01)")
    assert len({line.count("|") for line in lines[:6]}) == 1  # header, rule, 4 rows
    assert "†" in markdown and "‡" in markdown and "Holm-corrected" in markdown and "±0.01" in markdown
    latex = table_latex(table)
    for needed in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{", r"$^\dagger$", r"$^\ddagger$",
                   r"$\tau$", r"25\% data", r"\begin{tabular}{lrrrrrrr}"):
        assert needed in latex, needed
    assert "_" not in latex.replace(r"\_", "")
    assert latex.count(r"\\") == 1 + 4  # header + rows


def test_build_tables(evaluated):
    root, _, jsons, tsvs, systems = evaluated
    write_results(collect_results(jsons, systems), root / "results.tsv")
    tables = build_tables(root / "results.tsv", tsvs, systems,
                          {"reference_objective": "margin_mse", "alpha": 0.05, "equivalence_margin": 0.01},
                          root / "main.md", root / "main.tex", root / "main.tsv")
    assert len(tables) == 1 and tables[0].attrs["reference"] == REF
    assert (root / "main.md").read_text().startswith("### test-set")
    assert r"\begin{table}" in (root / "main.tex").read_text()
    assert len(pd.read_csv(root / "main.tsv", sep="\t")) == 4
    assert read_per_query(tsvs[1]).index.tolist() == QUERIES


def test_entry_point_scripts(evaluated, monkeypatch):
    """workflow_scripts/collect_results.py and tables.py with Snakemake's own containers."""
    iocontainers = pytest.importorskip("snakemake.iocontainers")
    from margin_retrieval import logs

    monkeypatch.setattr(logs, "setup_job_logging", lambda path: None)
    root, _, jsons, tsvs, systems = evaluated
    analysis = {"reference_objective": "margin_mse", "alpha": 0.05, "equivalence_margin": 0.01}

    class Collect:
        input = iocontainers.InputFiles(fromdict={"aggregates": [str(p) for p in jsons]})
        params = iocontainers.Params(fromdict={"systems": systems})
        output = iocontainers.OutputFiles([str(root / "results.tsv")])
        log = iocontainers.Log([str(root / "collect.log")])

    class Tables:
        input = iocontainers.InputFiles(fromdict={"results": str(root / "results.tsv"),
                                                  "per_query": [str(p) for p in tsvs]})
        params = iocontainers.Params(fromdict={"systems": systems, "analysis": analysis})
        output = iocontainers.OutputFiles(fromdict={"markdown": str(root / "main.md"),
                                                    "latex": str(root / "main.tex")})
        log = iocontainers.Log([str(root / "tables.log")])

    runpy.run_path(str(REPO / "workflow_scripts/collect_results.py"), init_globals={"snakemake": Collect})
    assert len(read_results(root / "results.tsv")) == 16
    runpy.run_path(str(REPO / "workflow_scripts/tables.py"), init_globals={"snakemake": Tables})
    assert "Margin-MSE (reference)" in (root / "main.md").read_text()
    assert (root / "main.tex").exists()


def test_measures_of_both_layouts():
    nested = {"measures": {"nDCG@10": 0.5, "R@100": 0.9}, "crosscheck": {"nDCG@10": {"agree": True}}}
    flat = {"nDCG@10": 0.5, "R@100": 0.9, "crosscheck": {}, "definitions": {"nDCG@10": "nDCG@10"},
            "judged_queries": 300, "judged_queries_missing_from_run": 0}
    assert measures_of(nested) == measures_of(flat) == {"nDCG@10": 0.5, "R@100": 0.9}
