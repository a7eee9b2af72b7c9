"""Validation noise (within-run σ, paired bootstrap over the validation queries) on hand-made values and logs."""

from __future__ import annotations

import csv
import json
import math

import pytest

from margin_retrieval.analysis.numbers.validation_noise import (
    COLUMNS, noise_table, paired_bootstrap_sd, read_validations, within_run_noise, write_noise_table,
)


def test_within_run_noise_is_the_sd_of_late_differences_over_sqrt_2():
    # last half [0.32, 0.30, 0.34]: differences -0.02, +0.04, mean 0.01, sd(ddof=1) = sqrt(2 * 0.03^2) -> 0.03
    assert within_run_noise([0.0, 0.5, 0.3, 0.32, 0.30, 0.34]) == pytest.approx(0.03, abs=1e-12)
    # five values: the last half is the last three, the early jump does not count
    assert within_run_noise([0.0, 0.9, 0.32, 0.30, 0.34]) == pytest.approx(0.03, abs=1e-12)


def test_within_run_noise_ignores_a_steady_drift_and_needs_three_late_values():
    assert within_run_noise([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(within_run_noise([0.1, 0.2, 0.3, 0.4]))
    assert math.isnan(within_run_noise([]))


def test_paired_bootstrap_sd_of_two_queries_is_the_exact_bootstrap_sd():
    # differences 0 and 1: a resampled mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4, so its sd is sqrt(1/8)
    a, b = {"q1": 0.5, "q2": 1.0}, {"q1": 0.5, "q2": 0.0}
    assert paired_bootstrap_sd(a, b, samples=20000) == pytest.approx(math.sqrt(1 / 8), rel=0.03)


def test_paired_bootstrap_sd_is_zero_for_a_constant_difference_and_symmetric():
    a = {f"q{i}": 0.1 * i for i in range(10)}
    assert paired_bootstrap_sd({q: v + 0.25 for q, v in a.items()}, a) == pytest.approx(0.0, abs=1e-12)
    b = {f"q{i}": (0.37 * i) % 1 for i in range(10)}
    assert paired_bootstrap_sd(a, b) == paired_bootstrap_sd(b, a) > 0


def test_paired_bootstrap_sd_is_seeded_and_ignores_key_order():
    a = {f"q{i}": (0.61 * i) % 1 for i in range(20)}
    b = {f"q{i}": (0.29 * i) % 1 for i in range(20)}
    reordered = dict(reversed(list(a.items())))
    assert paired_bootstrap_sd(a, b, seed=3) == paired_bootstrap_sd(reordered, b, seed=3)
    assert paired_bootstrap_sd(a, b, seed=3) != paired_bootstrap_sd(a, b, seed=4)


def test_paired_bootstrap_sd_rejects_unpaired_queries():
    with pytest.raises(ValueError, match="different queries.*'q3'"):
        paired_bootstrap_sd({"q1": 0.1, "q2": 0.2}, {"q1": 0.1, "q3": 0.2})
    with pytest.raises(ValueError, match="no query"):
        paired_bootstrap_sd({}, {})


def validation(step: int, per_query: dict | None = None, value: float | None = None) -> dict:
    event = {"event": "validation", "step": step, "triples_seen": step * 4, "seconds": float(step),
             "nDCG@10": value if per_query is None else sum(per_query.values()) / len(per_query)}
    return event | ({} if per_query is None else {"per_query": per_query})


def write_log(path, events) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in [{"event": "start", "total_steps": 9}, *events]))
    return str(path)


def test_noise_table_reports_each_run(tmp_path):
    start, best, final = {"q1": 0.25, "q2": 0.5}, {"q1": 0.5, "q2": 0.75}, {"q1": 0.5, "q2": 0.0}
    with_queries = [validation(0, start), validation(2, {"q1": 0.4, "q2": 0.4}), validation(4, best),
                    validation(6, {"q1": 0.3, "q2": 0.5}), validation(8, best), validation(9, final)]
    old_style = [validation(s, value=v) for s, v in ((0, 0.1), (3, 0.3), (6, 0.2))]
    logs = {"a": write_log(tmp_path / "a.jsonl", [*with_queries, {"event": "end", "best_step": 4}]),
            "old": write_log(tmp_path / "old.jsonl", old_style), "empty": write_log(tmp_path / "empty.jsonl", [])}
    rows = noise_table(logs, samples=20000)
    assert [row["run"] for row in rows] == ["a", "old", "empty"]
    a, old, empty = rows
    assert (a["validations"], a["queries"], a["best_step"], a["final_step"]) == (6, 2, 4, 9)  # the first maximum
    assert (a["start_value"], a["best_value"], a["final_value"]) == (0.375, 0.625, 0.25)
    assert a["best_minus_start"] == pytest.approx(0.25) and a["best_minus_final"] == pytest.approx(0.375)
    # late values 0.4, 0.625, 0.25: differences +0.225, -0.375, sd = 0.6 / sqrt(2), over sqrt(2) -> 0.3
    assert a["within_run_sd"] == pytest.approx(0.3)
    assert a["best_vs_start_sd"] == pytest.approx(0.0, abs=1e-12)  # both queries gain 0.25
    assert a["best_vs_final_sd"] == pytest.approx(math.sqrt(1 / 8) * 0.75, rel=0.03)  # differences 0 and 0.75
    assert old == {"run": "old", "validations": 3, "queries": None, "within_run_sd": None, "start_value": 0.1,
                   "best_step": 3, "best_value": 0.3, "final_step": 6, "final_value": 0.2,
                   "best_minus_start": pytest.approx(0.2), "best_minus_final": pytest.approx(0.1),
                   "best_vs_start_sd": None, "best_vs_final_sd": None}
    assert empty == {"run": "empty", "validations": 0, "queries": None, "within_run_sd": None}
    json.dumps(rows, allow_nan=False)  # no NaN: the table is valid JSON


def test_noise_table_names_the_log_of_bad_input(tmp_path):
    unpaired = write_log(tmp_path / "unpaired.jsonl", [validation(0, {"q1": 0.1}), validation(2, {"q2": 0.2})])
    with pytest.raises(ValueError, match="unpaired.jsonl: paired bootstrap: .*different queries"):
        noise_table({"r": unpaired})
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(validation(0, value=0.1)) + "\n{not json\n")
    with pytest.raises(ValueError, match="broken.jsonl, line 2: not JSON"):
        read_validations(broken)


def test_the_noise_table_file_has_a_row_per_run_and_blank_cells_for_missing_values(tmp_path):
    logs = {"a": write_log(tmp_path / "a.jsonl", [validation(s, {"q1": s / 10, "q2": s / 20}) for s in range(6)]),
            "old": write_log(tmp_path / "old.jsonl", [validation(0, value=0.1)])}
    write_noise_table(logs, tmp_path / "noise.tsv")
    with open(tmp_path / "noise.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == COLUMNS and set(COLUMNS) == {"run", *noise_table(logs)[0]}
    assert [(row["run"], row["queries"], row["best_step"]) for row in rows] == [("a", "2", "5"), ("old", "", "0")]
    assert rows[1]["best_vs_final_sd"] == "" and float(rows[0]["within_run_sd"]) == pytest.approx(0.0, abs=1e-12)


def test_between_runs_pairs_runs_on_the_same_queries_at_their_best_validations(tmp_path):
    from margin_retrieval.analysis.numbers.validation_noise import between_runs

    def log(name, curves):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"event": "validation", "step": step, "nDCG@10": sum(pq.values()) / len(pq),
                                            "per_query": pq}) + "\n" for step, pq in curves))
        return path

    a = log("a", [(0, {"q1": 0.2, "q2": 0.4}), (9, {"q1": 0.6, "q2": 0.4})])  # best 0.5 at step 9
    b = log("b", [(0, {"q1": 0.2, "q2": 0.2})])  # best 0.2
    other = log("c", [(0, {"q9": 0.5})])  # other validation queries: no pair
    rows = between_runs({"a": a, "b": b, "c": other}, samples=500)
    assert [(r["run_a"], r["run_b"], r["queries"]) for r in rows] == [("a", "b", 2)]
    assert rows[0]["difference"] == pytest.approx(0.3)
    assert rows[0]["paired_sd"] > 0  # differences 0.4 and 0.2 over two queries
