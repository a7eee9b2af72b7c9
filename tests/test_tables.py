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
from margin_retrieval.analysis.numbers.significance import main_table
from margin_retrieval.analysis.results import collect_results, measures_of, read_per_query, read_results, write_results
from margin_retrieval.analysis.systems import read_manifest, reference_variant, system_label, write_manifest
from margin_retrieval.analysis.tables import build_tables, table_latex, table_markdown

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


def write_eval(root, collection: str, scores: dict[str, pd.Series], systems_list=SYSTEMS) -> tuple[list, list, list]:
    """Aggregate and per-query files of every system, and the systems manifest (``root/systems.json``) naming them."""
    jsons, tsvs, systems = [], [], []
    for system in systems_list:
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
        systems.append({**system, "collection": collection, "aggregate": str(json_path), "per_query": str(tsv_path)})
    write_manifest(root / "systems.json", systems, "bm25")
    return jsons, tsvs, systems


@pytest.fixture
def evaluated(tmp_path):
    scores = per_query_scores()
    jsons, tsvs, systems = write_eval(tmp_path, "test-set", scores)
    return tmp_path, scores, jsons, tsvs, systems


def collected(root):
    return collect_results(read_manifest(root / "systems.json"))


def test_collect_results_round_trip(evaluated):
    root, scores, _, _, _ = evaluated
    results = collected(root)
    assert len(results) == 4 * 4
    write_results(results, root / "results.tsv")
    text = (root / "results.tsv").read_text().splitlines()
    assert text[0].split("\t") == ["system", "kind", "model", "objective", "in_batch", "tau", "fraction",
                                   "negatives", "batching", "lr", "seed", "collection", "measure", "value"]
    back = read_results(root / "results.tsv")
    zeroshot = back[back["kind"] == "zeroshot"].iloc[0]
    assert zeroshot["objective"] == "" and zeroshot["in_batch"] == "" and math.isnan(zeroshot["tau"])
    static = back[back["system"] == STATIC].iloc[0]
    assert static["in_batch"] == "true" and static["tau"] == 0.2 and static["fraction"] == 1.0
    # A grid without seed/negatives/batching columns reads with their single-valued defaults.
    assert static["seed"] == 0 and static["negatives"] == "bm25" and static["batching"] == "random"
    value = back[(back["system"] == REF) & (back["measure"] == "nDCG@10")]["value"].item()
    assert value == pytest.approx(scores[REF].mean(), abs=0, rel=1e-15)


def test_read_results_written_before_the_new_columns(evaluated):
    root, *_ = evaluated
    write_results(collected(root), root / "results.tsv")
    old = pd.read_csv(root / "results.tsv", sep="\t", dtype=str, keep_default_na=False)
    old.drop(columns=["negatives", "batching", "seed"]).to_csv(root / "old.tsv", sep="\t", index=False)
    back = read_results(root / "old.tsv")
    assert set(back["seed"]) == {0} and set(back["negatives"]) == {""} and len(back) == 16


def test_manifest_rejects_a_duplicate(tmp_path):
    record = {**SYSTEMS[0], "collection": "c", "aggregate": "a.json", "per_query": "a.tsv"}
    with pytest.raises(ValueError, match="appears twice"):
        write_manifest(tmp_path / "systems.json", [record, record], "bm25")


def test_labels_and_reference():
    assert system_label(SYSTEMS[0]) == "small (zero-shot)"
    assert system_label(SYSTEMS[2]) == "static margin (in-batch) τ=0.2"
    assert system_label(SYSTEMS[3]) == "adaptive margin, 25% data"
    assert system_label({**SYSTEMS[3], "negatives": "student"}, varying={"negatives"}) == \
        "adaptive margin, 25% data, student negatives"
    variants = pd.DataFrame([{"objective": "", "in_batch": "", "batching": "", **s} for s in SYSTEMS])
    assert reference_variant(variants, "margin_mse") == REF
    assert reference_variant(variants, "zeroshot/small") == "zeroshot/small"
    assert reference_variant(variants, "infonce") is None


def test_main_table_tests_and_holm(evaluated):
    root, scores, _, _, _ = evaluated
    table = main_table(collected(root), scores, "margin_mse", alpha=0.05, margin=0.01)
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
    assert math.isnan(by_system.loc[REF, "nDCG@10 ci_low"])  # one seed: no interval
    assert table.attrs["margin"] == 0.01 and table.attrs["n_queries"] == len(QUERIES)


def test_main_table_without_reference(evaluated):
    root, scores, _, _, _ = evaluated
    table = main_table(collected(root), scores, "infonce", alpha=0.05, margin=0.01)
    assert table["p_value"].isna().all() and not table["equivalent"].any()
    assert "no reference system" in table_markdown(table)


def seeded(system: dict, seed: int) -> dict:
    return {**system, "system": f"{system['system']}/seed~{seed}", "seed": seed}


def test_main_table_seeds_interval_and_averaged_tests(tmp_path):
    """Three seeds of each trained system: the mean, the t interval over seeds (by hand), and tests on the
    per-query scores averaged over seeds."""
    systems = [SYSTEMS[0]] + [seeded(s, seed) for s in SYSTEMS[1:] for seed in (0, 1, 2)]
    rng = np.random.default_rng(3)
    base = pd.Series(rng.uniform(0.2, 0.8, len(QUERIES)), index=QUERIES)
    shift = {0: 0.0, 1: 0.02, 2: 0.07}
    scores = {s["system"]: (base + shift.get(s.get("seed"), 0.0) + (0.05 if "adaptive" in s["system"] else 0))
              .clip(0, 1) for s in systems}
    write_eval(tmp_path, "c", scores, systems)
    table = main_table(collected(tmp_path), scores, "margin_mse", alpha=0.05, margin=0.01).set_index("system")
    means = [scores[f"{ADAPTIVE}/seed~{seed}"].mean() for seed in (0, 1, 2)]
    mean = sum(means) / 3
    sd = math.sqrt(sum((m - mean) ** 2 for m in means) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t_{0.975, 2}
    row = table.loc[ADAPTIVE]
    assert row["n_seeds"] == 3 and row["nDCG@10"] == pytest.approx(mean)
    assert (row["nDCG@10 ci_low"], row["nDCG@10 ci_high"]) == pytest.approx((mean - half, mean + half))
    averaged = {name: sum(scores[f"{name}/seed~{seed}"] for seed in (0, 1, 2)) / 3 for name in (ADAPTIVE, REF)}
    assert row["p_value"] == pytest.approx(stats.paired_ttest(averaged[ADAPTIVE], averaged[REF])["p_value"])
    assert row["compared_with"] == REF and table.loc[REF, "reference"]
    markdown = table_markdown(main_table(collected(tmp_path), scores, "margin_mse", alpha=0.05, margin=0.01))
    assert f"{mean:.3f} ± {half:.3f}" in markdown and "| Seeds |" in markdown and "95% t interval" in markdown


def test_each_model_against_its_own_reference(tmp_path):
    """Two students: every trained run is tested against its own model's Margin-MSE run."""
    other = [{**s, "system": s["system"].replace("model~small", "model~big"), "model": "big"} for s in SYSTEMS[1:]]
    systems = SYSTEMS + other
    scores = per_query_scores()
    scores |= {s["system"]: scores[s["system"].replace("model~big", "model~small")] * 0.9 for s in other}
    write_eval(tmp_path, "c", scores, systems)
    table = main_table(collected(tmp_path), scores, "margin_mse", alpha=0.05, margin=0.01).set_index("system")
    big_ref, big_static = other[0]["system"], other[1]["system"]
    assert table.loc[big_static, "compared_with"] == big_ref and table.loc[STATIC, "compared_with"] == REF
    assert table.loc[big_ref, "reference"] and table.loc[REF, "reference"]
    assert table.loc["zeroshot/small", "compared_with"] == REF
    assert table.loc[big_static, "p_value"] == pytest.approx(
        stats.paired_ttest(scores[big_static], scores[big_ref])["p_value"])
    assert "its own reference" in table_markdown(main_table(collected(tmp_path), scores, "margin_mse", 0.05, 0.01))


def test_markdown_and_latex(evaluated):
    root, scores, _, _, _ = evaluated
    table = main_table(collected(root), scores, "margin_mse", alpha=0.05, margin=0.01)
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


def test_build_tables_uses_configured_measures(evaluated):
    root, *_ = evaluated
    write_results(collected(root), root / "results.tsv")
    tables = build_tables(root / "systems.json", root / "results.tsv",
                          {"reference_objective": "margin_mse", "alpha": 0.05, "equivalence_margin": 0.01},
                          {"test-set": ["RR@10", "nDCG@10"]}, root / "main.md", root / "main.tex", root / "main.tsv")
    assert len(tables) == 1 and tables[0].attrs["reference"] == REF
    markdown = (root / "main.md").read_text()
    assert markdown.startswith("### test-set") and "| System | RR@10 | nDCG@10 | p (Holm)" in markdown
    assert r"\begin{table}" in (root / "main.tex").read_text()
    tsv = pd.read_csv(root / "main.tsv", sep="\t")
    assert len(tsv) == 4 and "R@100" not in tsv.columns
    assert read_per_query(read_manifest(root / "systems.json")["per_query"][1]).index.tolist() == QUERIES


def test_main_table_puts_every_collection_side_by_side_in_config_order(tmp_path):
    """Two collections: the overview comes first with one nDCG@10 column per collection, in the configured order
    (not the alphabetical one), then one table per collection in the same order."""
    scores = per_query_scores()
    _, _, in_domain = write_eval(tmp_path, "zeta-in-domain", scores)
    _, _, transfer = write_eval(tmp_path, "alpha-transfer", {k: v * 0.5 for k, v in scores.items()})
    write_manifest(tmp_path / "systems.json", in_domain + transfer, "bm25")
    write_results(collected(tmp_path), tmp_path / "results.tsv")
    build_tables(tmp_path / "systems.json", tmp_path / "results.tsv", {"reference_objective": "margin_mse"},
                 {"zeta-in-domain": None, "alpha-transfer": None}, tmp_path / "m.md", tmp_path / "m.tex")
    markdown = (tmp_path / "m.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("### ")]
    assert headings == ["### nDCG@10 on every collection", "### zeta-in-domain", "### alpha-transfer"]
    assert "| System | nDCG@10 zeta-in-domain | nDCG@10 alpha-transfer |" in markdown
    reference = next(line for line in markdown.splitlines() if line.startswith("| small: Margin-MSE (reference)")
                     or line.startswith("| Margin-MSE (reference)"))
    ref_scores = scores[REF]
    assert reference.split(" | ")[1:] == [f"{ref_scores.mean():.3f}", f"{(ref_scores * 0.5).mean():.3f} |"]
    latex = (tmp_path / "m.tex").read_text()
    assert latex.count(r"\begin{tabular}") == 3 and r"\label{tab:main-overview}" in latex


def test_entry_point_scripts(evaluated, monkeypatch):
    """workflow_scripts/{systems_manifest,collect_results,tables}.py with Snakemake's own containers."""
    iocontainers = pytest.importorskip("snakemake.iocontainers")
    from margin_retrieval.jobs import logs

    monkeypatch.setattr(logs, "setup_job_logging", lambda path: None)
    root, _, jsons, tsvs, systems = evaluated
    analysis = {"reference_objective": "margin_mse", "alpha": 0.05, "equivalence_margin": 0.01}

    class Manifest:
        input = iocontainers.InputFiles([])
        params = iocontainers.Params(fromdict={"systems": systems, "negatives_default": "bm25"})
        output = iocontainers.OutputFiles([str(root / "manifest.json")])
        log = iocontainers.Log([str(root / "manifest.log")])

    class Collect:
        input = iocontainers.InputFiles(fromdict={"manifest": str(root / "manifest.json"),
                                                  "aggregates": [str(p) for p in jsons]})
        params = iocontainers.Params()
        output = iocontainers.OutputFiles([str(root / "results.tsv")])
        log = iocontainers.Log([str(root / "collect.log")])

    class Tables:
        input = iocontainers.InputFiles(fromdict={"manifest": str(root / "manifest.json"),
                                                  "results": str(root / "results.tsv"),
                                                  "per_query": [str(p) for p in tsvs]})
        params = iocontainers.Params(fromdict={"analysis": analysis, "measures": {}})
        output = iocontainers.OutputFiles(fromdict={"markdown": str(root / "main.md"),
                                                    "latex": str(root / "main.tex")})
        log = iocontainers.Log([str(root / "tables.log")])

    runpy.run_path(str(REPO / "workflow_scripts/systems_manifest.py"), init_globals={"snakemake": Manifest})
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
