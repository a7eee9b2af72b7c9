"""How runs ended and the validation-test rank agreement, on hand-written logs with known answers."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from margin_retrieval.analysis.numbers.train_logs import load_runs
from margin_retrieval.analysis.numbers.validation_agreement import (
    agreement, run_endings, write_training_summary,
)


def write_log(path, best, end_step, cap, reason):
    lines = [{"event": "start", "total_steps": cap, "triples": 100},
             {"event": "validation", "step": 0, "triples_seen": 0, "seconds": 0.0, "nDCG@10": 0.1},
             {"event": "validation", "step": end_step // 2, "triples_seen": 8, "seconds": 1.0, "nDCG@10": best},
             {"event": "end", "step": end_step, "best_step": end_step // 2, "best_value": best,
              "stopped_reason": reason}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


# best validation 0.2, 0.3, 0.4, 0.5 -> ranks 1..4; test 0.5, 0.4, 0.6, 0.7 -> ranks 2, 1, 3, 4:
# sum d^2 = 2, rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8.
RUNS = [("static", 0.2, 0.5, "early_stopping"), ("adaptive", 0.3, 0.4, "early_stopping"),
        ("distributed", 0.4, 0.6, "max_steps"), ("margin_mse", 0.5, 0.7, "early_stopping")]


@pytest.fixture
def grid(tmp_path):
    records, results = [], []
    for objective, best, test, reason in RUNS:
        name = f"trained/model~s/objective~{objective}/in_batch~false/tau~none/fraction~1/seed~0"
        records.append({"system": name, "kind": "trained", "model": "s", "objective": objective,
                        "in_batch": "false", "tau": math.nan, "fraction": 1.0, "seed": 0,
                        "train_log": write_log(tmp_path / f"{objective}.jsonl", best, 20, 40, reason)})
        results += [{"system": name, "collection": "test", "measure": "nDCG@10", "value": test},
                    {"system": name, "collection": "test", "measure": "RR@10", "value": 1 - test}]
    return load_runs(records), pd.DataFrame(results)


@pytest.fixture
def endings(grid):
    return run_endings(*grid)


def test_run_endings_hold_steps_cap_reason_and_the_test_value(endings):
    row = endings.set_index("system").filter(like="distributed", axis=0).iloc[0]
    assert (row["steps"], row["step_cap"], row["stopped_reason"], row["best_step"]) == (20, 40, "max_steps", 10)
    assert (row["best_validation"], row["test"]) == (0.4, 0.6)
    assert len(endings) == 4
    assert not endings["kept_untrained"].any()  # every run's best is at step 10


def test_run_endings_name_a_run_that_kept_the_untrained_model(grid):
    runs, results = grid
    runs[0]["end"] = {**runs[0]["end"], "best_step": 0, "kept_untrained": True}
    runs[1]["end"] = {key: value for key, value in runs[1]["end"].items() if key != "kept_untrained"} | {
        "best_step": 0}  # a log from before the key: best step 0 is the untrained model too
    assert run_endings(runs, results)["kept_untrained"].tolist() == [True, True, False, False]


def test_agreement_is_spearman_by_hand_and_counts_how_runs_ended(endings):
    summary = agreement(endings)
    assert summary["collections"]["test"]["spearman"] == pytest.approx(0.8)
    assert summary["stopped"] == {"early_stopping": 3, "max_steps": 1}
    assert summary["n_runs"] == 4


def test_agreement_is_undefined_below_three_runs(endings):
    summary = agreement(endings.head(2))
    assert summary["collections"]["test"]["spearman"] is None


def test_training_summary_files(tmp_path, grid):
    write_training_summary(*grid, tmp_path / "summary.tsv", tmp_path / "agreement.json")
    table = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert list(table["stopped_reason"]).count("max_steps") == 1 and table["step_cap"].tolist() == [40] * 4
    assert json.loads((tmp_path / "agreement.json").read_text())["collections"]["test"]["spearman"] == pytest.approx(0.8)
