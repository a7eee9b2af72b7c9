"""The learning-rate choice on validation, and the figures' default setting at each objective's chosen rate."""

import math

import pandas as pd

from margin_retrieval.analysis.numbers.effectiveness import default_setting
from margin_retrieval.analysis.numbers.learning_rates import learning_rate_table
from margin_retrieval.analysis.systems import system_label, varying_columns


def run(objective, lr, best, seed=0, in_batch="false"):
    return {"kind": "trained", "model": "m", "objective": objective, "in_batch": in_batch, "tau": math.nan,
            "fraction": 1.0, "negatives": "bm25", "batching": "random", "seed": seed, "lr": lr,
            "end": {"best_value": best}}


def test_each_setting_chooses_its_best_mean_validation_rate():
    runs = [run("adaptive", 5e-5, 0.60), run("adaptive", 1e-4, 0.64), run("adaptive", 1e-4, 0.62, seed=1),
            run("adaptive", 2e-4, 0.63),  # mean at 1e-4 is 0.63: a tie with 2e-4 goes to the smaller rate
            run("margin_mse", 5e-5, 0.68), run("margin_mse", 2e-4, 0.725),
            run("infonce", 5e-5, 0.61)]  # one rate only: not a learning-rate setting
    table = learning_rate_table(runs)
    assert set(table["objective"]) == {"adaptive", "margin_mse"}
    chosen = table[table["chosen"]].set_index("objective")
    assert chosen.loc["adaptive", "lr"] == 1e-4 and chosen.loc["adaptive", "seeds"] == 2
    assert chosen.loc["adaptive", "best_validation"] == pd.Series([0.64, 0.62]).mean()
    assert chosen.loc["margin_mse", "lr"] == 2e-4
    assert learning_rate_table([run("infonce", 5e-5, 0.6)]).empty


def test_figures_keep_each_objective_at_its_most_common_rate_and_labels_name_the_others():
    rows = pd.DataFrame([run("adaptive", 1e-4, 0.6, seed=s) for s in range(3)]
                        + [run("adaptive", 2e-5, 0.5), run("margin_mse", 2e-4, 0.7), run("margin_mse", 2e-4, 0.7, 1),
                           {"kind": "zeroshot", "objective": "", "lr": math.nan}])
    kept = default_setting(rows)
    assert sorted(kept["lr"].dropna().unique()) == [1e-4, 2e-4] and (kept["kind"] == "zeroshot").sum() == 1
    varying = varying_columns(rows)
    assert varying == {"lr/adaptive"}
    assert system_label(rows.iloc[3], varying=varying) == "adaptive margin, lr 2e-05"
    assert system_label(rows.iloc[4], varying=varying) == "Margin-MSE"
