"""Every figure on small synthetic inputs: files written, known numbers, graceful when the grid lacks pieces."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.text
import pandas as pd
import pytest

from margin_retrieval.analysis import figures
from margin_retrieval.analysis.figures import (
    build_figure, figure_data_efficiency, figure_per_query, figure_speedup, figure_targets, figure_tau,
    figure_training_curves, load_runs, smallest_matching_fraction, speedup_numbers, write_speedup,
)
from margin_retrieval.analysis.tables import write_results

REPO = Path(__file__).resolve().parents[1]
STUDENT, TEACHER = "small", "big"


def system(objective, in_batch="false", tau=None, fraction=1.0):
    tau_name = "none" if tau is None else f"{tau:g}"
    return {"system": f"trained/model~{STUDENT}/objective~{objective}/in_batch~{in_batch}/tau~{tau_name}/"
                      f"fraction~{fraction:g}",
            "kind": "trained", "model": STUDENT, "objective": objective, "in_batch": in_batch,
            "tau": math.nan if tau is None else tau, "fraction": fraction}


# Test nDCG@10 per system; Margin-MSE at full data is 0.60, the margin 0.01 -> adaptive needs >= 0.59.
VALUES = [
    ({"system": f"zeroshot/{STUDENT}", "kind": "zeroshot", "model": STUDENT}, 0.40),
    ({"system": f"zeroshot/{TEACHER}", "kind": "zeroshot", "model": TEACHER}, 0.65),
    (system("static", tau=0.1), 0.50), (system("static", tau=0.5), 0.56), (system("static", tau=1.0), 0.53),
    (system("static", "true", 0.1), 0.52), (system("static", "true", 0.5), 0.57),
    (system("adaptive", fraction=0.125), 0.55), (system("adaptive", fraction=0.25), 0.595),
    (system("adaptive", fraction=0.5), 0.58), (system("adaptive"), 0.61),
    (system("adaptive", "true", fraction=0.125), 0.50), (system("adaptive", "true"), 0.585),
    (system("distributed"), 0.59), (system("infonce"), 0.57),
    (system("margin_mse", fraction=0.125), 0.56), (system("margin_mse", fraction=0.5), 0.59),
    (system("margin_mse"), 0.60),
]


def results_table(keep=lambda row: True) -> pd.DataFrame:
    rows = []
    for description, value in VALUES:
        if not keep(description):
            continue
        base = {"objective": "", "in_batch": "", "tau": math.nan, "fraction": math.nan, **description,
                "collection": "test", "value": value}
        rows.append({**base, "measure": "nDCG@10"})
        rows.append({**base, "measure": "RR@10", "value": value + 0.05})
    return pd.DataFrame(rows)


def write_log(path, validation, end_seconds, targets=None, step_seconds=1.0):
    """validation: [(step, seconds, value)]; targets: [(step, mean, min, max)] or None."""
    lines = [{"event": "start", "step": 0, "triples_seen": 0, "seconds": 0.0, "total_steps": 40}]
    for step in range(1, 41):
        record = {"event": "train", "step": step, "triples_seen": 4 * step, "seconds": step * step_seconds,
                  "loss": 1.0 / step, "lr": 1e-3, "target_mean": None, "target_min": None, "target_max": None}
        if targets is not None:
            record.update(target_mean=0.1 + step / 400, target_min=0.0, target_max=0.3 + step / 200)
        lines.append(record)
    for step, seconds, value in validation:
        lines.append({"event": "validation", "step": step, "triples_seen": 4 * step, "seconds": seconds,
                      "nDCG@10": value})
    best = max(validation, key=lambda v: v[2])
    lines.append({"event": "end", "step": 40, "triples_seen": 160, "seconds": end_seconds, "best_step": best[0],
                  "best_value": best[2], "stopped_reason": "max_steps"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def run(objective, in_batch="false", tau=None, fraction=1.0):
    return {"model": STUDENT, "objective": objective, "in_batch": in_batch, "tau": tau, "fraction": fraction}


# Known speed-up: target = min(best adaptive 0.50, best static 0.48, best Margin-MSE 0.52) = 0.48.
# Adaptive reaches 0.48 at 20 s; the static sweep costs 30 + 30 s; Margin-MSE reaches it at 30 s + 15 s teacher.
LOGS = [
    (run("adaptive"), [(0, 0.0, 0.30), (10, 10.0, 0.40), (20, 20.0, 0.50), (30, 30.0, 0.49)], 30.0, True),
    (run("static", tau=0.1), [(0, 0.0, 0.30), (10, 10.0, 0.45), (20, 20.0, 0.44)], 30.0, False),
    (run("static", tau=0.5), [(0, 0.0, 0.30), (10, 10.0, 0.42), (20, 20.0, 0.48)], 30.0, False),
    (run("margin_mse"), [(0, 0.0, 0.30), (10, 10.0, 0.35), (20, 20.0, 0.47), (30, 30.0, 0.52)], 40.0, False),
    (run("adaptive", fraction=0.5), [(0, 0.0, 0.30), (10, 5.0, 0.46)], 10.0, True),
]
TEACHER_SECONDS = 15.0


@pytest.fixture
def runs(tmp_path):
    paths = [write_log(tmp_path / f"logs/{i}.jsonl", validation, end, targets=True if targets else None)
             for i, (_, validation, end, targets) in enumerate(LOGS)]
    return load_runs(paths, [description for description, *_ in LOGS]), paths


def capture_texts(monkeypatch, save: bool) -> list[str]:
    seen: list[str] = []
    original = figures.save_figure

    def capture(fig, png, pdf):
        seen.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        if save:
            original(fig, png, pdf)
        else:
            plt.close(fig)

    monkeypatch.setattr(figures, "save_figure", capture)
    return seen


@pytest.fixture
def texts(monkeypatch):
    """Every text drawn on the figures saved during the test."""
    return capture_texts(monkeypatch, save=True)


@pytest.fixture
def drawn(monkeypatch):
    """Every text drawn on the figures of the test, which are not written (faster; writing is tested elsewhere)."""
    return capture_texts(monkeypatch, save=False)


def written(tmp_path, name):
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    return png, pdf


def assert_files(png, pdf):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_figure_tau(tmp_path, texts):
    png, pdf = written(tmp_path, "tau")
    figure_tau(results_table(), png, pdf)
    assert_files(png, pdf)
    joined = "\n".join(texts)
    assert "static margin (in-batch)" in joined and "adaptive margin (0.610)" in joined
    assert "Margin-MSE (0.600)" in joined and "distributed margin (0.590)" in joined


def test_figures_are_deterministic(tmp_path):
    first, second = written(tmp_path, "a"), written(tmp_path, "b")
    figure_tau(results_table(), *first)
    figure_tau(results_table(), *second)
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_figure_tau_without_static_runs(tmp_path, texts):
    png, pdf = written(tmp_path, "tau")
    figure_tau(results_table(lambda row: row.get("objective") != "static"), png, pdf)
    assert_files(png, pdf)
    assert "no static-margin runs in this configuration" in texts


def test_smallest_matching_fraction():
    results = results_table()
    assert smallest_matching_fraction(results, margin=0.01) == {
        "adaptive margin": 0.25, "adaptive margin (in-batch)": None}
    # A wider margin admits the in-batch variant's full-data run and adaptive's smallest fraction.
    assert smallest_matching_fraction(results, margin=0.05) == {
        "adaptive margin": 0.125, "adaptive margin (in-batch)": 1.0}
    no_reference = results_table(lambda row: row.get("objective") != "margin_mse")
    assert smallest_matching_fraction(no_reference, margin=0.01) == {
        "adaptive margin": None, "adaptive margin (in-batch)": None}
    assert smallest_matching_fraction(results_table(lambda r: r.get("objective") != "adaptive"), 0.01) == {}


def test_figure_data_efficiency(tmp_path, texts):
    png, pdf = written(tmp_path, "data")
    smallest = figure_data_efficiency(results_table(), png, pdf, margin=0.01, student=STUDENT, teacher=TEACHER)
    assert_files(png, pdf)
    assert smallest["adaptive margin"] == 0.25
    joined = "\n".join(texts)
    assert "smallest fraction within −0.01" in joined and "  adaptive margin: 25%" in joined
    assert "  adaptive margin (in-batch): not reached" in joined
    assert "small (student), zero-shot (0.400)" in joined and "big (teacher), zero-shot (0.650)" in joined
    assert "12.5%" in joined  # percent tick labels


def test_figure_data_efficiency_without_reduced_data(tmp_path, drawn):
    full_only = results_table(lambda row: row.get("fraction", 1.0) == 1.0 and row.get("objective") != "margin_mse")
    assert figure_data_efficiency(full_only, *written(tmp_path, "data"), margin=0.01) == {
        "adaptive margin": None, "adaptive margin (in-batch)": None}
    assert "no runs on reduced training data in this configuration" in drawn
    assert "no margin_mse reference run: matching fraction undefined" in drawn


def test_speedup_numbers_known(runs):
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_SECONDS)
    assert numbers["target"] == 0.48
    (entry,) = numbers["variants"]  # the half-data adaptive run is not a full-data run
    assert entry["label"] == "adaptive margin" and entry["seconds_to_target"] == 20.0
    assert entry["static_sweep"]["seconds"] == 60.0 and entry["static_sweep"]["speedup"] == 3.0
    assert entry["static_sweep"]["best_tau"] == 0.5 and entry["static_sweep"]["taus"] == [0.1, 0.5]
    assert entry["reference"]["seconds"] == 45.0 and entry["reference"]["speedup"] == pytest.approx(2.25)
    # A configured target: Margin-MSE reaches 0.45 at 20 s (+15 s teacher), adaptive at 20 s.
    fixed = speedup_numbers(loaded, TEACHER_SECONDS, target=0.45)["variants"][0]
    assert fixed["reference"]["speedup"] == pytest.approx(35 / 20) and fixed["static_sweep"]["speedup"] == 3.0
    # Unreachable target: no speed-up, no crash.
    never = speedup_numbers(loaded, TEACHER_SECONDS, target=0.9)["variants"][0]
    assert never["seconds_to_target"] is None and never["static_sweep"]["speedup"] is None


def test_figure_speedup_and_outputs(tmp_path, runs, texts):
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_SECONDS)
    png, pdf = written(tmp_path, "speedup")
    figure_speedup(numbers, png, pdf)
    assert_files(png, pdf)
    assert "×3.0" in texts and "×2.2" in texts
    write_speedup(numbers, tmp_path / "speedup.json", tmp_path / "speedup.tsv")
    assert json.loads((tmp_path / "speedup.json").read_text())["target"] == 0.48
    table = pd.read_csv(tmp_path / "speedup.tsv", sep="\t")
    assert list(table["speedup"]) == pytest.approx([3.0, 2.25])


def test_speedup_without_static_or_reference(tmp_path, runs, drawn):
    loaded, _ = runs
    only_adaptive = [r for r in loaded if r["objective"] == "adaptive"]
    numbers = speedup_numbers(only_adaptive, None)
    assert numbers["target"] == 0.50 and numbers["variants"][0]["static_sweep"] is None
    figure_speedup(numbers, *written(tmp_path, "speedup"))
    assert "no static-margin sweep and no reference run to compare with" in drawn
    nothing = speedup_numbers([r for r in loaded if r["objective"] == "static"], None)
    assert nothing["variants"] == []
    figure_speedup(nothing, *written(tmp_path, "speedup"))
    assert "no adaptive or distributed runs at full data in this configuration" in drawn
    empty = speedup_numbers([], None)
    assert empty["target"] is None and empty["variants"] == []
    figure_speedup(empty, *written(tmp_path, "speedup"))
    assert "no validation logs to compare" in drawn


def test_training_curves_and_targets(tmp_path, runs, texts):
    loaded, _ = runs
    png, pdf = written(tmp_path, "curves")
    figure_training_curves(loaded, png, pdf)
    assert_files(png, pdf)
    assert "static margin τ=0.5 (best of sweep)" in texts and "Margin-MSE" in texts
    assert "adaptive margin, 50% data" not in texts
    png, pdf = written(tmp_path, "targets")
    figure_targets(loaded, png, pdf)
    assert_files(png, pdf)
    assert "adaptive margin" in texts


def test_training_curves_and_targets_missing(tmp_path, runs, drawn):
    loaded, _ = runs
    figure_targets([r for r in loaded if r["objective"] != "adaptive"], *written(tmp_path, "targets"))
    assert "no adaptive or distributed runs with logged targets at full data" in drawn
    figure_training_curves([], *written(tmp_path, "curves"))
    assert "no validation logs in this configuration" in drawn


def test_figure_per_query(tmp_path, texts):
    a = pd.Series({"q1": 0.5, "q2": 0.2, "q3": 0.9, "q4": 0.4})
    b = pd.Series({"q1": 0.4, "q2": 0.3, "q3": 0.9, "q4": 0.1})
    png, pdf = written(tmp_path, "pq")
    figure_per_query(a, b, "adaptive margin", "Margin-MSE", png, pdf)
    assert_files(png, pdf)
    assert "above diagonal: 2\nbelow: 1\nequal: 1" in texts
    with pytest.raises(ValueError, match="different queries"):
        figure_per_query(a, b.drop("q1"), "adaptive margin", "Margin-MSE", png, pdf)
    assert not plt.get_fignums()  # nothing left open


def test_figure_per_query_missing(tmp_path, drawn):
    figure_per_query(pd.Series({"q1": 0.5}), None, "adaptive margin", "Margin-MSE", *written(tmp_path, "pq"))
    assert "no Margin-MSE run in this configuration" in drawn


def test_build_figure_dispatch(tmp_path, runs):
    loaded, paths = runs
    results = results_table()
    write_results(results, tmp_path / "results.tsv")
    analysis = {"reference_objective": "margin_mse", "equivalence_margin": 0.01, "alpha": 0.05,
                "target_effectiveness": None}
    out = lambda name, *extra: {"png": tmp_path / f"{name}.png", "pdf": tmp_path / f"{name}.pdf",  # noqa: E731
                                **{key: tmp_path / f"{name}.{key}" for key in extra}}
    smallest = build_figure("data_efficiency", {"results": tmp_path / "results.tsv"},
                            {"analysis": analysis, "student": STUDENT, "teacher": TEACHER}, out("data", "json"))
    assert smallest["adaptive margin"] == 0.25
    summary = json.loads((tmp_path / "data.json").read_text())
    assert summary["reference_value"] == 0.60 and summary["smallest_matching_fraction"]["adaptive margin"] == 0.25
    benchmark = tmp_path / "score_teacher.tsv"
    benchmark.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                         "15.0\t0:00:15\t1\t1\t1\t1\t0\t0\t0\t1\n")
    run_params = [description for description, *_ in LOGS]
    numbers = build_figure("speedup", {"logs": paths, "teacher_benchmark": [str(benchmark)]},
                           {"analysis": analysis, "runs": run_params}, out("speedup", "json", "tsv"))
    assert numbers["teacher_seconds"] == 15.0 and numbers["variants"][0]["reference"]["speedup"] == 2.25
    assert figures._single([]) is None and figures.read_benchmark_seconds(None) is None
    assert figures._single([str(benchmark)]) == str(benchmark)
    build_figure("training_curves", {"logs": paths}, {"runs": run_params}, out("curves"))
    # Per-query pair picked from the system list: full-data adaptive vs full-data Margin-MSE.
    systems, per_query = [], []
    for name, scores in ((system("adaptive"), {"q1": 0.5, "q2": 0.7}), (system("margin_mse"), {"q1": 0.4, "q2": 0.8}),
                         (system("margin_mse", fraction=0.5), {"q1": 0.1, "q2": 0.1})):
        path = tmp_path / f"pq{len(per_query)}.tsv"
        path.write_text("measure\tquery_id\tvalue\n" + "".join(f"nDCG@10\t{q}\t{v}\n" for q, v in scores.items()))
        systems.append({**name, "tau": None, "collection": "test"})
        per_query.append(path)
    pair = figures.per_query_pair(per_query, systems, "margin_mse")
    assert pair["label"] == "adaptive margin" and pair["reference_scores"].to_dict() == {"q1": 0.4, "q2": 0.8}
    build_figure("per_query", {"per_query": per_query}, {"systems": systems, "analysis": analysis}, out("pq"))
    for name in ("data", "speedup", "curves", "pq"):
        assert_files(tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    with pytest.raises(ValueError, match="unknown figure"):
        build_figure("nope", {}, {}, out("x"))


def test_entry_point_script(tmp_path, runs, monkeypatch):
    """workflow_scripts/figure.py with Snakemake's own containers for input/params/output."""
    iocontainers = pytest.importorskip("snakemake.iocontainers")
    from margin_retrieval import logs

    monkeypatch.setattr(logs, "setup_job_logging", lambda path: None)
    _, paths = runs

    class Job:
        input = iocontainers.InputFiles(fromdict={"logs": [str(p) for p in paths], "teacher_benchmark": []})
        params = iocontainers.Params(fromdict={"figure": "speedup", "runs": [d for d, *_ in LOGS],
                                               "analysis": {"reference_objective": "margin_mse"}})
        output = iocontainers.OutputFiles(fromdict={key: str(tmp_path / f"speedup.{key}")
                                                    for key in ("png", "pdf", "json", "tsv")})
        log = iocontainers.Log([str(tmp_path / "figure.log")])

    runpy.run_path(str(REPO / "workflow_scripts/figure.py"), init_globals={"snakemake": Job})
    assert_files(tmp_path / "speedup.png", tmp_path / "speedup.pdf")
    assert json.loads((tmp_path / "speedup.json").read_text())["teacher_seconds"] is None
