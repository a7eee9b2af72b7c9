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
import scipy.stats

from margin_retrieval.analysis.figures import FIGURES, build_figure, comparison, per_query, speedup, style
from margin_retrieval.analysis.figures import data_efficiency, targets, tau, training_curves
from margin_retrieval.analysis.numbers.comparison import column_comparison, column_differences
from margin_retrieval.analysis.numbers.effectiveness import smallest_matching_fraction
from margin_retrieval.analysis.numbers.speedup import speedup_numbers
from margin_retrieval.analysis.numbers.train_logs import load_runs
from margin_retrieval.analysis.results import write_results
from margin_retrieval.analysis.systems import normalise, write_manifest

REPO = Path(__file__).resolve().parents[1]
STUDENT, TEACHER = "small", "big"


def system(objective, in_batch="false", tau=None, fraction=1.0, seed=None, **columns):
    tau_name = "none" if tau is None else f"{tau:g}"
    name = (f"trained/model~{STUDENT}/objective~{objective}/in_batch~{in_batch}/tau~{tau_name}/fraction~{fraction:g}"
            + "".join(f"/{key}~{value}" for key, value in columns.items()) + ("" if seed is None else f"/seed~{seed}"))
    return {"system": name, "kind": "trained", "model": STUDENT, "objective": objective, "in_batch": in_batch,
            "tau": math.nan if tau is None else tau, "fraction": fraction, "seed": seed, **columns}


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
        base = {**normalise(description, "bm25"), "collection": "test", "value": value}
        rows.append({**base, "measure": "nDCG@10"})
        rows.append({**base, "measure": "RR@10", "value": value + 0.05})
    return pd.DataFrame(rows)



def write_log(path, validation, end_step, targets=False, seconds_per_step=1.0, batch=4):
    """validation: [(step, value)]; training events every step up to ``end_step``; ``seconds_per_step`` sets the
    wall-clock seconds the log records (which no cost may depend on)."""
    lines = [{"event": "start", "step": 0, "triples_seen": 0, "seconds": 0.0}]
    for step in range(1, end_step + 1):
        record = {"event": "train", "step": step, "triples_seen": batch * step, "seconds": step * seconds_per_step,
                  "loss": 1.0 / step, "lr": 1e-3, "target_mean": None, "target_min": None, "target_max": None}
        if targets:
            record.update(target_mean=0.1 + step / 400, target_min=0.0, target_max=0.3 + step / 200)
        lines.append(record)
    for step, value in validation:
        lines.append({"event": "validation", "step": step, "triples_seen": batch * step,
                      "seconds": step * seconds_per_step, "nDCG@10": value})
    best = max(validation, key=lambda v: v[1])
    lines.append({"event": "end", "step": end_step, "triples_seen": batch * end_step,
                  "seconds": end_step * seconds_per_step, "best_step": best[0], "best_value": best[1],
                  "stopped_reason": "early_stopping"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def write_benchmark(path, cpu_time, wall=999.0):
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    f"{wall}\t0:16:39\t1\t1\t1\t1\t0\t0\t0\t{cpu_time}\n")
    return path


# A tiny grid by hand (batch 4). Target = min(best adaptive 0.50, best static (τ=0.5) 0.48, Margin-MSE 0.52) = 0.48.
# Adaptive reaches 0.48 at step 20 (80 triples; 60 CPU s / 30 steps -> 40 CPU s). The static sweep trains τ=0.1
# for 20 steps (30 CPU s) and τ=0.5 for 40 (80 CPU s): 60 steps, 240 triples, 110 CPU s -> ×3.0, ×3.0, ×2.75.
# Margin-MSE reaches 0.48 at step 30 (90 CPU s / 30 steps -> 90 s) + 15 CPU s teacher -> ×1.5 steps, ×2.625 CPU s.
LOGS = [
    (system("adaptive"), [(0, 0.30), (10, 0.40), (20, 0.50), (30, 0.49)], 30, 60.0, True),
    (system("static", tau=0.1), [(0, 0.30), (10, 0.45), (20, 0.44)], 20, 30.0, False),
    (system("static", tau=0.5), [(0, 0.30), (10, 0.42), (20, 0.48), (40, 0.47)], 40, 80.0, False),
    (system("margin_mse"), [(0, 0.30), (10, 0.35), (20, 0.47), (30, 0.52)], 30, 90.0, False),
    (system("adaptive", fraction=0.5), [(0, 0.30), (10, 0.46)], 10, 10.0, True),
]
TEACHER_CPU = 15.0


def manifest_records(tmp_path, logs=LOGS, seconds_per_step=1.0, collection="test"):
    records = []
    for i, (description, validation, end, cpu, targets_logged) in enumerate(logs):
        log = write_log(tmp_path / f"logs/{i}.jsonl", validation, end, targets_logged, seconds_per_step)
        bench = write_benchmark(tmp_path / f"logs/{i}.tsv", cpu)
        records.append({**description, "collection": collection, "train_log": str(log),
                        "train_benchmark": str(bench), "aggregate": "", "per_query": ""})
    return records


@pytest.fixture
def runs(tmp_path):
    records = manifest_records(tmp_path)
    write_manifest(tmp_path / "systems.json", records, "bm25")
    return load_runs(records), tmp_path / "systems.json"


def capture_texts(monkeypatch, save: bool) -> list[str]:
    seen: list[str] = []
    original = style.save_figure

    def capture(fig, png, pdf):
        seen.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        if save:
            original(fig, png, pdf)
        else:
            plt.close(fig)

    for module in (tau, data_efficiency, training_curves, speedup, targets, per_query, comparison):
        monkeypatch.setattr(module, "save_figure", capture)
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
    return tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"


def assert_files(png, pdf):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_registry_names_every_figure():
    assert set(FIGURES) == {"tau", "data_efficiency", "training_curves", "speedup", "targets", "per_query",
                            "negatives", "batching"}
    with pytest.raises(ValueError, match="unknown figure"):
        build_figure("nope", {}, {}, {"png": "x.png", "pdf": "x.pdf"})


def test_figure_tau(tmp_path, texts):
    png, pdf = written(tmp_path, "tau")
    tau.draw(results_table(), png, pdf)
    assert_files(png, pdf)
    joined = "\n".join(texts)
    assert "static margin (in-batch)" in joined and "adaptive margin (0.610)" in joined
    assert "Margin-MSE (0.600)" in joined and "distributed margin (0.590)" in joined


def test_figures_are_deterministic(tmp_path):
    first, second = written(tmp_path, "a"), written(tmp_path, "b")
    tau.draw(results_table(), *first)
    tau.draw(results_table(), *second)
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_figure_tau_without_static_runs(tmp_path, texts):
    png, pdf = written(tmp_path, "tau")
    tau.draw(results_table(lambda row: row.get("objective") != "static"), png, pdf)
    assert_files(png, pdf)
    assert "no static-margin runs in this configuration" in texts


def with_seeds(results: pd.DataFrame, system_name: str, values: list[float]) -> pd.DataFrame:
    """``results`` with one system's nDCG@10 row replaced by one row per seed."""
    keep = results[~((results["system"] == system_name) & (results["measure"] == "nDCG@10"))]
    row = results[(results["system"] == system_name) & (results["measure"] == "nDCG@10")].iloc[0]
    seeds = [{**row.to_dict(), "system": f"{system_name}/seed~{i}", "seed": i, "value": v} for i, v in enumerate(values)]
    return pd.concat([keep, pd.DataFrame(seeds)], ignore_index=True)


def test_figure_tau_draws_seed_error_bars(tmp_path, drawn):
    results = with_seeds(results_table(), system("static", tau=0.5)["system"], [0.54, 0.56, 0.58])
    tau.draw(results, *written(tmp_path, "tau"))
    assert "static margin (mean of ≤3 seeds, 95% CI)" in drawn


def test_figure_tau_draws_reference_intervals_right_of_the_largest_tau(tmp_path, monkeypatch):
    """A reference with seeds gets its interval as an error bar at the right edge, in room added past the largest τ."""
    results = with_seeds(results_table(), system("adaptive")["system"], [0.58, 0.61, 0.64])
    figures = []
    monkeypatch.setattr(tau, "save_figure", lambda fig, png, pdf: figures.append(fig))
    tau.draw(results, *written(tmp_path, "tau"))
    ax = figures[0].axes[0]
    largest = max(line.get_xdata().max() for line in ax.lines if line.get_transform() == ax.transData
                  and len(line.get_xdata()) > 1)
    assert ax.get_xlim()[1] >= 1.3 * largest
    bars = [c for c in ax.collections if c.get_transform() != ax.transData]  # the interval's vertical segment
    assert len(bars) == 1
    (segment,) = bars[0].get_segments()
    low, high = sorted(y for _, y in segment)
    assert (low + high) / 2 == pytest.approx(0.61) and segment[0][0] > 0.85  # at the mean; x in axes fractions
    plt.close(figures[0])


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
    # Seeds: the mean over seeds counts (0.57, 0.59, 0.61 -> 0.59 reaches 0.60 - 0.01).
    seeded = with_seeds(results, system("adaptive", fraction=0.125)["system"], [0.57, 0.59, 0.61])
    assert smallest_matching_fraction(seeded, margin=0.01)["adaptive margin"] == 0.125


def test_figure_data_efficiency(tmp_path, texts):
    png, pdf = written(tmp_path, "data")
    smallest = data_efficiency.draw(results_table(), png, pdf, margin=0.01, student=STUDENT, teacher=TEACHER)
    assert_files(png, pdf)
    assert smallest["adaptive margin"] == 0.25
    joined = "\n".join(texts)
    assert "smallest fraction within −0.01" in joined and "  adaptive margin: 25%" in joined
    assert "  adaptive margin (in-batch): not reached" in joined
    assert "small (student), zero-shot (0.400)" in joined and "big (teacher), zero-shot (0.650)" in joined
    assert "12.5%" in joined  # percent tick labels


def test_figure_data_efficiency_draws_a_full_data_only_variant_as_a_point(drawn):
    in_batch_full_only = results_table(lambda row: not (row.get("in_batch") == "true" and row.get("fraction", 1) < 1))
    data_efficiency.draw(in_batch_full_only, "unused.png", "unused.pdf", margin=0.01)
    assert "adaptive margin (in-batch) (100% data only)" in drawn and "adaptive margin" in drawn
    assert "adaptive margin (100% data only)" not in drawn  # the per-triple variant has its line


def test_figure_data_efficiency_without_reduced_data(tmp_path, drawn):
    full_only = results_table(lambda row: row.get("fraction", 1.0) == 1.0 and row.get("objective") != "margin_mse")
    assert data_efficiency.draw(full_only, *written(tmp_path, "data"), margin=0.01) == {
        "adaptive margin": None, "adaptive margin (in-batch)": None}
    assert "no runs on reduced training data in this configuration" in drawn
    assert "no margin_mse reference run: matching fraction undefined" in drawn


def test_speedup_in_steps_triples_and_cpu_seconds(runs):
    """At the first crossing (hold 1) of the lowest best validation value, Margin-MSE's and static τ 0.5's 0.48."""
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_CPU, hold=1)
    assert numbers["target"] == 0.48
    (entry,) = numbers["variants"]  # the half-data adaptive run is not a full-data run
    own = entry["to_target"]
    assert entry["label"] == "adaptive margin" and own["n_reached"] == own["n_seeds"] == 1
    assert (own["steps"]["mean"], own["triples"]["mean"], own["cpu_seconds"]["mean"]) == (20, 80, 40)
    sweep = entry["static_sweep"]
    assert sweep["cost"] == {"steps": 60, "triples": 240, "cpu_seconds": 110}
    assert sweep["speedup"] == pytest.approx({"steps": 3.0, "triples": 3.0, "cpu_seconds": 2.75})
    assert sweep["best_tau"] == 0.5 and sweep["taus"] == [0.1, 0.5]
    # Successive halving, first rung one validation interval (10 steps): τ 0.1 leads there (.45 vs .42) and trains to
    # its end (20 steps), τ 0.5 stops at 10: 30 steps against adaptive's 20 to the target, and it keeps τ 0.1.
    halving = sweep["halving"]
    assert (halving["kept_tau"], halving["steps"], halving["per_tau_steps"]) == (0.1, 30, {"0.1": 20, "0.5": 10})
    assert halving["speedup_steps"] == pytest.approx(1.5) and halving["kept_best_value"] == 0.45
    reference = entry["reference"]
    assert reference["cost"] == {"steps": 30, "triples": 120, "cpu_seconds": 105}
    assert reference["speedup"] == pytest.approx({"steps": 1.5, "triples": 1.5, "cpu_seconds": 105 / 40})
    # Unreachable target: no speed-up, no crash.
    never = speedup_numbers(loaded, TEACHER_CPU, target=0.9)["variants"][0]
    assert never["to_target"]["n_reached"] == 0 and never["static_sweep"]["speedup"]["steps"] is None


def test_speedup_target_must_be_held(runs):
    """hold 2: a run reaches the target where two validations in a row are at or above it. The level each run holds
    for two validations: adaptive .49 (.50, .49), static τ 0.5 (the sweep's best) .47 (.48, .47), Margin-MSE .52
    (its last validation); the target is the lowest, .47. Margin-MSE holds it from step 20 (.47, .52), adaptive
    from 20 (.50, .49); at .48 static τ 0.5 would never count (.48 is followed by .47)."""
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_CPU)
    assert (numbers["target"], numbers["hold"]) == (0.47, 2)
    (entry,) = numbers["variants"]
    assert entry["to_target"]["steps"]["mean"] == 20 and entry["reference"]["cost"]["steps"] == 20
    assert entry["static_sweep"]["reached"]
    at_48 = speedup_numbers(loaded, TEACHER_CPU, target=0.48)["variants"][0]
    assert at_48["to_target"]["steps"]["mean"] == 20 and at_48["reference"]["cost"]["steps"] == 30
    assert not at_48["static_sweep"]["reached"]


def test_speedup_bars_say_how_many_seeds_reached_an_unreached_target(tmp_path, runs, drawn):
    loaded, _ = runs
    speedup.draw(speedup_numbers(loaded, TEACHER_CPU, target=0.9), *written(tmp_path, "speedup"))
    assert drawn.count("reached by\n0 of 1\nseeds") == 3  # the adaptive bar (steps) and Margin-MSE's (both panels)


def test_speedup_ignores_wall_clock(tmp_path):
    """The same grid logged on a machine ten times slower gives the same numbers."""
    fast = load_runs(manifest_records(tmp_path / "fast", seconds_per_step=1.0))
    slow = load_runs(manifest_records(tmp_path / "slow", seconds_per_step=10.0))
    assert speedup_numbers(fast, TEACHER_CPU) == speedup_numbers(slow, TEACHER_CPU)


def test_speedup_averages_seeds(tmp_path):
    """Two adaptive seeds reach the target at steps 20 and 30: mean 25 with the t interval over the two."""
    second = (system("adaptive", seed=1), [(0, 0.30), (10, 0.40), (20, 0.47), (30, 0.50)], 30, 60.0, True)
    first = (system("adaptive", seed=0), *LOGS[0][1:])
    loaded = load_runs(manifest_records(tmp_path, [first, second, *LOGS[1:]]))
    (entry,) = speedup_numbers(loaded, TEACHER_CPU, target=0.48)["variants"]
    steps = entry["to_target"]["steps"]
    assert steps["n"] == 2 and steps["mean"] == 25
    assert steps["half_width"] == pytest.approx(12.706204736174705 * math.sqrt(50) / math.sqrt(2))
    assert entry["static_sweep"]["speedup"]["steps"] == pytest.approx(60 / 25)


def test_speedup_sweep_counts_each_tau_once_averaged_over_its_seeds(tmp_path):
    """A τ with more seeds than the rest (a headline τ) counts once in the sweep, at the mean of its seeds:
    τ 0.1 (20 steps, 30 CPU s) + τ 0.5 over seeds 0 and 1 (40 and 20 steps, 80 and 40 CPU s) = 50 steps, 90 CPU s."""
    logs = [
        LOGS[0],
        (system("static", tau=0.1, seed=0), *LOGS[1][1:]),
        (system("static", tau=0.5, seed=0), *LOGS[2][1:]),
        (system("static", tau=0.5, seed=1), [(0, 0.30), (10, 0.42), (20, 0.48)], 20, 40.0, False),
        LOGS[3],
    ]
    (entry,) = speedup_numbers(load_runs(manifest_records(tmp_path, logs)), TEACHER_CPU, target=0.48)["variants"]
    sweep = entry["static_sweep"]
    assert sweep["cost"] == {"steps": 50, "triples": 200, "cpu_seconds": 90}
    assert sweep["per_tau"]["0.5"]["steps"] == 30
    assert sweep["speedup"]["steps"] == pytest.approx(50 / 20)


def test_speedup_compares_cpu_seconds_only_between_runs_on_one_cpu_kind(tmp_path, drawn):
    """Static τ 0.5 trained on another CPU than the rest: the sweep's CPU seconds and their speed-up are left out
    (and its bar says why), its steps still compare (60 against adaptive's 20); Margin-MSE, on adaptive's CPU, keeps
    its CPU-second speed-up (105 / 40)."""
    records = manifest_records(tmp_path)
    for record in records:
        record["cpu"] = "slow CPU" if record.get("tau") == 0.5 else "fast CPU"
    (entry,) = speedup_numbers(load_runs(records), TEACHER_CPU, hold=1)["variants"]
    sweep, reference = entry["static_sweep"], entry["reference"]
    assert sweep["cpu_kinds"] == ["fast CPU", "slow CPU"] and reference["cpu_kinds"] == ["fast CPU"]
    assert sweep["cost"]["cpu_seconds"] is None and sweep["speedup"]["cpu_seconds"] is None
    assert all(part["cpu_seconds"] is None for part in sweep["per_tau"].values())
    assert sweep["speedup"]["steps"] == pytest.approx(3.0)
    assert reference["speedup"]["cpu_seconds"] == pytest.approx(105 / 40)
    speedup.draw(speedup_numbers(load_runs(records), TEACHER_CPU, hold=1), *written(tmp_path, "speedup"))
    assert any(text.endswith("(several CPUs)") and text.startswith("static sweep") for text in drawn)


def test_a_run_log_names_its_cpu_before_the_manifest_does(tmp_path):
    """The CPU in a run's start event (a run trained here) wins over the manifest's (the archive's runs.tsv)."""
    records = manifest_records(tmp_path, LOGS[:2])
    for record in records:
        record["cpu"] = "archived CPU"
    log = Path(records[0]["train_log"])
    events = [json.loads(line) for line in log.read_text().splitlines()]
    events[0]["cpu"] = "logged CPU"
    log.write_text("".join(json.dumps(event) + "\n" for event in events))
    assert [run["cpu"] for run in load_runs(records)] == ["logged CPU", "archived CPU"]


def test_figure_speedup_and_outputs(tmp_path, runs, texts):
    _, manifest = runs
    benchmark = write_benchmark(tmp_path / "score_teacher.tsv", TEACHER_CPU)
    out = {"png": tmp_path / "s.png", "pdf": tmp_path / "s.pdf", "json": tmp_path / "s.json", "tsv": tmp_path / "s.tsv"}
    build_figure("speedup", {"manifest": str(manifest), "teacher_benchmark": [str(benchmark)]},
                 {"analysis": {"reference_objective": "margin_mse", "target_hold": 1}}, out)
    assert_files(out["png"], out["pdf"])
    # target_hold 1 reaches the reference's (Margin-MSE's) cost of the first crossing: 30 steps, not 20 (hold 2).
    assert "×3.0" in texts and "×2.8" in texts and "×1.5" in texts and "×2.6" in texts
    assert json.loads(out["json"].read_text())["teacher_cpu_seconds"] == TEACHER_CPU
    table = pd.read_csv(out["tsv"], sep="\t")
    steps = table[table["unit"] == "steps"]
    assert list(steps["speedup"]) == pytest.approx([3.0, 1.5])
    assert list(table[table["unit"] == "cpu_seconds"]["compared_cost"]) == pytest.approx([110, 105])


def test_speedup_without_static_or_reference(tmp_path, runs, drawn):
    loaded, _ = runs
    only_adaptive = [r for r in loaded if r["objective"] == "adaptive"]
    numbers = speedup_numbers(only_adaptive, None)
    assert numbers["target"] == 0.49 and numbers["variants"][0]["static_sweep"] is None
    speedup.draw(numbers, *written(tmp_path, "speedup"))
    assert "no static-margin sweep and no reference run to compare with" in drawn
    nothing = speedup_numbers([r for r in loaded if r["objective"] == "static"], None)
    assert nothing["variants"] == []
    speedup.draw(nothing, *written(tmp_path, "speedup"))
    assert "no adaptive or distributed runs at full data in this configuration" in drawn
    empty = speedup_numbers([], None)
    assert empty["target"] is None and empty["variants"] == []
    speedup.draw(empty, *written(tmp_path, "speedup"))
    assert "no validation logs to compare" in drawn


def test_training_curves_and_targets(tmp_path, runs, texts):
    loaded, manifest = runs
    png, pdf = written(tmp_path, "curves")
    build_figure("training_curves", {"manifest": str(manifest)}, {}, {"png": png, "pdf": pdf})
    assert_files(png, pdf)
    assert "static margin τ=0.5 (best of sweep)" in texts and "Margin-MSE" in texts
    assert "adaptive margin, 50% data" not in texts
    png, pdf = written(tmp_path, "targets")
    targets.draw(loaded, png, pdf)
    assert_files(png, pdf)
    assert "adaptive margin" in texts


def test_training_curves_and_targets_missing(tmp_path, runs, drawn):
    loaded, _ = runs
    targets.draw([r for r in loaded if r["objective"] != "adaptive"], *written(tmp_path, "targets"))
    assert "no adaptive or distributed runs with logged targets at full data" in drawn
    training_curves.draw([], *written(tmp_path, "curves"))
    assert "no validation logs in this configuration" in drawn


def test_figure_per_query(tmp_path, texts):
    a = pd.Series({"q1": 0.5, "q2": 0.2, "q3": 0.9, "q4": 0.4})
    b = pd.Series({"q1": 0.4, "q2": 0.3, "q3": 0.9, "q4": 0.1})
    png, pdf = written(tmp_path, "pq")
    per_query.draw(a, b, "adaptive margin", "Margin-MSE", png, pdf)
    assert_files(png, pdf)
    assert "above diagonal: 2\nbelow: 1\nequal: 1" in texts
    with pytest.raises(ValueError, match="different queries"):
        per_query.draw(a, b.drop("q1"), "adaptive margin", "Margin-MSE", png, pdf)
    assert not plt.get_fignums()  # nothing left open


def test_figure_per_query_missing(tmp_path, drawn):
    per_query.draw(pd.Series({"q1": 0.5}), None, "adaptive margin", "Margin-MSE", *written(tmp_path, "pq"))
    assert "no Margin-MSE run in this configuration" in drawn


def test_per_query_pair_from_the_manifest_averages_seeds(tmp_path):
    """Full-data adaptive (two seeds, averaged) vs full-data Margin-MSE, never the half-data Margin-MSE run."""
    records = []
    for description, scores in ((system("adaptive", seed=0), {"q1": 0.5, "q2": 0.7}),
                                (system("adaptive", seed=1), {"q1": 0.7, "q2": 0.9}),
                                (system("margin_mse"), {"q1": 0.4, "q2": 0.8}),
                                (system("margin_mse", fraction=0.5), {"q1": 0.1, "q2": 0.1})):
        path = tmp_path / f"pq{len(records)}.tsv"
        path.write_text("measure\tquery_id\tvalue\n" + "".join(f"nDCG@10\t{q}\t{v}\n" for q, v in scores.items()))
        records.append({**description, "collection": "test", "per_query": str(path), "aggregate": ""})
    write_manifest(tmp_path / "systems.json", records, "bm25")
    from margin_retrieval.analysis.systems import read_manifest

    pair = per_query.per_query_pair(read_manifest(tmp_path / "systems.json"), "margin_mse")
    assert pair["label"] == "adaptive margin" and pair["scores"].to_dict() == pytest.approx({"q1": 0.6, "q2": 0.8})
    assert pair["reference_scores"].to_dict() == {"q1": 0.4, "q2": 0.8}
    out = {"png": tmp_path / "pq.png", "pdf": tmp_path / "pq.pdf"}
    build_figure("per_query", {"manifest": str(tmp_path / "systems.json")}, {"analysis": {}}, out)
    assert_files(out["png"], out["pdf"])


def negatives_grid(tmp_path):
    """Results and logs with both negative sources; with student negatives static τ=0.1 wins on validation but
    τ=0.5 on test, so a choice on test would pick the other one."""
    values, logs = [], []
    for source, taus in (("bm25", {0.1: (0.45, 0.50), 0.5: (0.48, 0.56)}),
                         ("student", {0.1: (0.50, 0.52), 0.5: (0.46, 0.58)})):
        for tau_value, (validation, test) in taus.items():
            description = system("static", tau=tau_value, negatives=source)
            values.append((description, test))
            logs.append((description, [(0, 0.3), (10, validation)], 10, 10.0, False))
        for seed, test in enumerate((0.60, 0.62) if source == "bm25" else (0.55, 0.57)):
            description = system("adaptive", negatives=source, seed=seed)
            values.append((description, test))
            logs.append((description, [(0, 0.3), (10, 0.5)], 10, 10.0, True))
    rows = [{**normalise(d, "bm25"), "collection": "test", "measure": "nDCG@10", "value": v} for d, v in values]
    records = manifest_records(tmp_path, logs)
    for i, (record, (_, value)) in enumerate(zip(records, values)):  # per-query scores whose mean is the value
        record["per_query"] = str(tmp_path / f"pq{i}.tsv")
        Path(record["per_query"]).write_text("measure\tquery_id\tvalue\n" + "".join(
            f"nDCG@10\tq{q}\t{value + offset}\n" for q, offset in enumerate((-0.1, 0.1, -0.05, 0.05 + i / 1000))))
    return pd.DataFrame(rows), records


def test_column_comparison_chooses_static_on_validation(tmp_path):
    results, records = negatives_grid(tmp_path)
    table = column_comparison(results, load_runs(records), "negatives").set_index(["objective", "value_of"])
    assert table.loc[("static", "bm25"), "tau"] == 0.5 and table.loc[("static", "student"), "tau"] == 0.1
    assert table.loc[("static", "student"), "value"] == 0.52
    assert table.loc[("adaptive", "bm25"), "value"] == pytest.approx(0.61)
    assert table.loc[("adaptive", "bm25"), "n_seeds"] == 2
    assert table.loc[("adaptive", "bm25"), "half_width"] == pytest.approx(12.706204736174705 * math.sqrt(0.0002) / math.sqrt(2))


def test_column_differences_pair_each_value_with_its_baseline_holm_corrected():
    table = pd.DataFrame([
        {"label": "A", "value_of": "random", "value": 0.5, "system": "a-r"},
        {"label": "A", "value_of": "clustered", "value": 0.55, "system": "a-c"},
        {"label": "B", "value_of": "random", "value": 0.3, "system": "b-r"},
        {"label": "B", "value_of": "clustered", "value": 0.4, "system": "b-c"},
        {"label": "C", "value_of": "clustered", "value": 0.2, "system": "c-c"},  # no baseline: not tested
    ])
    scores = {name: pd.Series(values, index=["q1", "q2", "q3"]) for name, values in (
        ("a-r", [0.4, 0.5, 0.6]), ("a-c", [0.5, 0.5, 0.65]), ("b-r", [0.2, 0.3, 0.4]), ("b-c", [0.3, 0.35, 0.6]))}
    out = column_differences(table, "batching", scores).set_index("system")
    # By hand: A's differences 0.1, 0, 0.05 (mean 0.05, sd 0.05): t = 0.05 / (0.05 / sqrt 3) = sqrt 3, df 2.
    p_a = 2 * scipy.stats.t.sf(math.sqrt(3), 2)
    p_b = scipy.stats.ttest_rel([0.3, 0.35, 0.6], [0.2, 0.3, 0.4]).pvalue
    assert out.loc["a-c", "difference"] == pytest.approx(0.05) and out.loc["a-c", "baseline"] == "a-r"
    assert out.loc["a-c", "p_value"] == pytest.approx(p_a) and out.loc["b-c", "p_value"] == pytest.approx(p_b)
    low, high = sorted((p_a, p_b))
    assert sorted(out[["p_holm"]].dropna()["p_holm"]) == pytest.approx([2 * low, max(2 * low, high)])
    assert out[["difference", "p_value"]].loc[["a-r", "b-r", "c-c"]].isna().all().all()


def test_figure_negatives_and_batching(tmp_path, texts):
    results, records = negatives_grid(tmp_path)
    write_results(results, tmp_path / "results.tsv")
    write_manifest(tmp_path / "systems.json", records, "bm25")
    inputs = {"results": str(tmp_path / "results.tsv"), "manifest": str(tmp_path / "systems.json")}
    for name in ("negatives", "batching"):
        out = {"png": tmp_path / f"{name}.png", "pdf": tmp_path / f"{name}.pdf", "tsv": tmp_path / f"{name}.tsv"}
        build_figure(name, inputs, {"analysis": {}}, out)
        assert_files(out["png"], out["pdf"])
    joined = "\n".join(texts)
    assert "BM25 negatives" in joined and "student negatives" in joined and "0.610\n(n=2)" in joined
    numbers = pd.read_csv(tmp_path / "negatives.tsv", sep="\t").set_index(["objective", "value_of"])
    assert numbers.loc[("adaptive", "student"), "difference"] == pytest.approx(0.56 - 0.61)
    assert "Δ -0.050\np(Holm)" in joined  # under the adaptive margin's name
    # The grid has random batches only: the batching figure says so.
    assert "the grid has only batching = random" in joined


def test_entry_point_script(tmp_path, runs, monkeypatch):
    """workflow_scripts/figure.py with Snakemake's own containers for input/params/output."""
    iocontainers = pytest.importorskip("snakemake.iocontainers")
    from margin_retrieval.jobs import logs

    monkeypatch.setattr(logs, "setup_job_logging", lambda path: None)
    _, manifest = runs

    class Job:
        input = iocontainers.InputFiles(fromdict={"manifest": str(manifest), "logs": [], "teacher_benchmark": []})
        params = iocontainers.Params(fromdict={"figure": "speedup", "analysis": {"reference_objective": "margin_mse"}})
        output = iocontainers.OutputFiles(fromdict={key: str(tmp_path / f"speedup.{key}")
                                                    for key in ("png", "pdf", "json", "tsv")})
        log = iocontainers.Log([str(tmp_path / "figure.log")])

    runpy.run_path(str(REPO / "workflow_scripts/figure.py"), init_globals={"snakemake": Job})
    assert_files(tmp_path / "speedup.png", tmp_path / "speedup.pdf")
    assert json.loads((tmp_path / "speedup.json").read_text())["teacher_cpu_seconds"] is None


def test_speedup_bars_are_named_without_their_shared_data_context(tmp_path, runs, drawn):
    """Tick labels carry the system's name (commas inside its parentheses kept); the title carries the data context
    that every bar shares."""
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_CPU)
    entry = numbers["variants"][0]
    entry.update(objective="adaptive", in_batch="textbook",
                 label="adaptive margin (in-batch, textbook), BM25 negatives, random batches")
    entry["reference"]["label"] = "Margin-MSE, BM25 negatives, random batches"
    speedup.draw(numbers, *written(tmp_path, "speedup"))
    assert any(text.startswith("adaptive margin\n(in-batch,\ntextbook)\n") for text in drawn)
    assert any(text.startswith("Margin-MSE\n") for text in drawn)
    assert not any("random batches" in text for text in drawn if "\n" in text and "Cost" not in text)
    assert any("(full training data, BM25 negatives, random batches)" in text for text in drawn)


def test_speedup_bar_says_how_many_seeds_reached_the_target(tmp_path, runs, drawn):
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_CPU)
    numbers["variants"][0]["to_target"].update(n_reached=1, n_seeds=3)
    speedup.draw(numbers, *written(tmp_path, "speedup"))
    assert "reached by\n1 of 3\nseeds" in drawn


def test_speedup_says_when_the_untrained_model_reaches_the_target(tmp_path, runs, drawn):
    loaded, _ = runs
    numbers = speedup_numbers(loaded, TEACHER_CPU, target=0.30)
    assert numbers["variants"][0]["static_sweep"]["speedup"]["steps"] is None
    speedup.draw(numbers, *written(tmp_path, "speedup"))
    assert "target reached by the untrained model (step 0); speed-ups undefined" in drawn
