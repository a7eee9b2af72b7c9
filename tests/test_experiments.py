import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import Paramspace

from margin_retrieval.workflow.config import Batching, Export, InBatch, Negatives, Objective, Settings
from margin_retrieval.jobs.errors import ConfigError
from margin_retrieval.workflow.experiments import GridDefaults, expand_experiments, fraction_size, run_description
from tests.configs import validated

DEFAULTS = GridDefaults(seed=0, negatives=Negatives.BM25, batching=Batching.RANDOM, learning_rate=5e-5)


def test_grid_crosses_lists_and_deduplicates_shared_runs():
    experiments = {
        "sweep": [{"objective": "static", "tau": [0.1, 1], "in_batch": [False, True]}],
        "fractions": [{"objective": "adaptive", "fraction": [0.5, 1.0]}],
        "comparison": [{"objective": "adaptive"}],
    }
    table = expand_experiments(experiments, ["student"], DEFAULTS).table
    assert len(table) == 4 + 2
    shared = table[(table.objective == "adaptive") & (table.fraction == "1")]
    assert shared.group.tolist() == ["fractions,comparison"]
    assert set(table[table.objective == "static"].tau) == {"0.1", "1"}
    assert set(table.in_batch) == {"false", "true"}


def test_static_tau_int_and_float_are_the_same_run():
    table = expand_experiments({"a": [{"objective": "static", "tau": [1, 1.0]}]}, ["m"], DEFAULTS).table
    assert len(table) == 1
    assert run_description(table.iloc[0].to_dict())["tau"] == 1.0


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"objective": "nope"}, "objective must be one of"),
        ({"objective": "static"}, "needs a numeric tau"),
        ({"objective": "static", "tau": [0.1, -0.1]}, "tau must be >= 0, got -0.1"),
        ({"objective": "adaptive", "tau": 0.2}, "only meaningful for the static"),
        ({"objective": "distributed", "in_batch": True}, "cannot be combined with in_batch"),
        ({"objective": "margin_mse", "in_batch": True}, "margin objectives only"),
        ({"objective": "adaptive", "fraction": 0}, "fraction must be in"),
        ({"objective": "adaptive", "colour": 1}, "unknown column"),
        ({"objective": "adaptive", "model": "other"}, "not a configured student"),
        ({"objective": "adaptive", "seed": 1.5}, "seed must be an integer"),
        ({"objective": "adaptive", "seed": True}, "seed must be an integer"),
        ({"objective": "adaptive", "negatives": "docpairs"}, "negatives must be one of"),
        ({"objective": "adaptive", "batching": "sorted"}, "batching must be one of"),
        ({"objective": "adaptive", "in_batch": "maybe"}, "in_batch must be one of"),
    ],
)
def test_bad_grids_name_the_group_entry_and_the_problem(grid, message):
    with pytest.raises(ConfigError, match=message) as error:
        expand_experiments({"my_group": [{"objective": "adaptive"}, grid]}, ["m"], DEFAULTS)
    assert str(error.value).startswith("config experiments.my_group[1]: ")


def test_fraction_sizes_are_nested_prefixes():
    sizes = [fraction_size(809, f) for f in (0.125, 0.25, 0.5, 1.0)]
    assert sizes == sorted(sizes) and sizes[-1] == 809 and sizes[0] == 102


def names(table) -> list[str]:
    return list(Paramspace(table.drop(columns="group"), param_sep="~").instance_patterns)


def parse(name: str) -> dict:
    """As ``system_description`` in rules/common.smk reads a run name."""
    return dict(part.split("~", 1) for part in name.split("/"))


def test_seeds_expand_to_one_run_each_with_the_seed_in_the_name():
    table = expand_experiments({"headline": [{"objective": ["adaptive", "margin_mse"], "seed": [0, 1, 2]}],
                                "other": [{"objective": "infonce"}]}, ["m"],
                               GridDefaults(seed=7, negatives=Negatives.BM25, batching=Batching.RANDOM,
                                            learning_rate=5e-5)).table
    assert len(table) == 2 * 3 + 1
    run_names = names(table)
    assert sum("/seed~1/" in name for name in run_names) == 2
    assert "model~m/objective~infonce/in_batch~false/tau~none/fraction~1/negatives~bm25/batching~random/seed~7" \
        "/lr~5e-05" in run_names  # a grid without seeds takes training.seed
    seeds = sorted(run_description(parse(name))["seed"] for name in run_names if "adaptive" in name)
    assert seeds == [0, 1, 2]


def test_negatives_and_batching_are_columns_with_config_defaults():
    config = validated(train_data={"dataset": "beir/scifact/train", "negatives": {"source": "student"}},
                       training={"seed": 3, "batching": "random"})
    defaults = GridDefaults.from_settings(Settings.from_config(config))
    assert defaults == GridDefaults(seed=3, negatives=Negatives.STUDENT, batching=Batching.RANDOM,
                                    learning_rate=5e-5)
    table = expand_experiments({"g": [{"objective": "adaptive"},
                                      {"objective": "adaptive", "negatives": ["bm25", "student"],
                                       "batching": "clustered"}]}, ["m"], defaults).table
    rows = [run_description(row) for row in table.to_dict("records")]
    assert {(r["negatives"], r["batching"]) for r in rows} == {
        (Negatives.STUDENT, Batching.RANDOM), (Negatives.BM25, Batching.CLUSTERED),
        (Negatives.STUDENT, Batching.CLUSTERED)}


def test_docpairs_configs_name_their_only_negative_source():
    config = validated(train_data={"dataset": "msmarco-passage/train", "docpairs": {}})
    defaults = GridDefaults.from_settings(Settings.from_config(config))
    assert defaults.negatives == Negatives.DOCPAIRS
    table = expand_experiments({"g": [{"objective": "adaptive"}]}, ["m"], defaults).table
    assert table.negatives.tolist() == ["docpairs"]
    with pytest.raises(ValueError, match="docpairs"):
        expand_experiments({"g": [{"objective": "adaptive", "negatives": "bm25"}]}, ["m"], defaults)


def test_run_names_round_trip_to_typed_columns():
    table = expand_experiments({"g": [{"objective": "static", "tau": 0.5, "in_batch": [False, True, "textbook"],
                                       "fraction": 0.25, "seed": 4}]}, ["m"], DEFAULTS).table
    for name, row in zip(names(table), table.to_dict("records")):
        described = run_description(parse(name))
        assert described == run_description(row)
        assert type(described["objective"]) is Objective and type(described["in_batch"]) is InBatch
        # the typed values write the same name again: one form from the grid to the path and back
        assert "/".join(f"{key}~{value:g}" if isinstance(value, float) else f"{key}~{value}"
                        for key, value in described.items()) == name
        assert described["tau"] == 0.5 and described["fraction"] == 0.25 and described["seed"] == 4
    assert {run_description(parse(name))["in_batch"] for name in names(table)} == set(InBatch)


def test_the_grid_is_parsed_once_into_typed_runs_keyed_like_the_table():
    grid = expand_experiments({"g": [{"objective": "static", "tau": [0.5, 1], "in_batch": [False, True]}],
                               "h": [{"objective": "margin_mse", "fraction": [0.25, 1.0], "seed": [0, 1]}]},
                              ["m"], DEFAULTS)
    assert list(grid.runs) == names(grid.table)  # the same runs, in the table's order
    for (name, run), row in zip(grid.runs.items(), grid.table.to_dict("records")):
        assert run.name == name and run.description() == run_description(row)
        assert type(run.objective) is Objective and type(run.in_batch) is InBatch and type(run.seed) is int
    assert {run.tau for run in grid.runs.values()} == {0.5, 1.0, None}


def test_names_written_before_the_new_columns_still_parse():
    old = "model~m/objective~adaptive/in_batch~true/tau~none/fraction~0.5"
    with pytest.raises(KeyError, match="seed"):
        run_description(parse(old))
    described = run_description(parse(old), DEFAULTS)
    assert described["in_batch"] == InBatch.ORIGINAL and described["fraction"] == 0.5
    assert (described["seed"], described["negatives"], described["batching"]) == (0, "bm25", "random")
    assert described["lr"] == 5e-5  # the objective's default learning rate


def test_dry_run_trains_each_negative_source_from_its_own_triples(tmp_path):
    """One split for every run; one triples set per source, and per student for the students' own rankings."""
    repo = Path(__file__).resolve().parents[1]
    for model in ("a", "b"):  # model sources must exist before any job (the config check)
        (tmp_path / model).mkdir()
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load((repo / "config.yaml").read_text()) | {
        "models": {"a": {"source": "./a", "pooling": "mean"}, "b": {"source": "./b", "pooling": "mean"}},
        "student": ["a", "b"], "teacher": "a", "zeroshot": [],
        "experiments": {"g": [{"objective": ["adaptive", "margin_mse"], "negatives": ["bm25", "student"],
                               "seed": [0, 1]}]}}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--dry-run", "--directory",
         str(tmp_path), "--configfile", str(config)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = [block for block in result.stdout.split("\n\n") if re.search(r"^(local)?rule \w+:", block, re.M)]

    def rule_of(block: str) -> str:
        return re.search(r"^(?:local)?rule (\w+):", block, re.M).group(1)

    outputs = sorted(line.split("output: ")[1] for block in jobs if rule_of(block) == "training_data"
                     for line in block.splitlines() if "output: " in line)
    assert outputs == [f"results/train_data/{source}/triples.tsv, results/train_data/{source}/stats.json"
                       for source in ("bm25", "student/a", "student/b")]
    assert sum(rule_of(block) == "training_split" for block in jobs) == 1
    rankings = sorted(line.split("output: ")[1] for block in jobs if rule_of(block) == "rank_training_queries"
                      for line in block.splitlines() if "output: " in line)
    assert rankings == [f"results/train_data/student/{model}/ranking.tsv" for model in ("a", "b")]
    trains = [block for block in jobs if rule_of(block) == "train"]
    assert len(trains) == 2 * 2 * 2 * 2  # models x objectives x sources x seeds
    for block in trains:
        name = next(line for line in block.splitlines() if "output: " in line).split("results/train/")[1]
        run = parse(name.split("/model,")[0])
        source = "bm25" if run["negatives"] == "bm25" else f"student/{run['model']}"
        assert f"results/train_data/{source}/triples.tsv" in block
        if run["objective"] == "margin_mse":
            assert f"results/train_data/{source}/teacher_scores.tsv" in block


def test_lr_is_a_column_defaulting_to_the_objectives_learning_rate():
    defaults = GridDefaults(seed=0, negatives=Negatives.BM25, batching=Batching.RANDOM, learning_rate=5e-5,
                            learning_rates=((Objective.MARGIN_MSE, 2e-4),))
    table = expand_experiments({"lr_choice": [{"objective": "adaptive", "lr": [2e-5, 1e-4]}],
                                "headline": [{"objective": ["adaptive", "margin_mse"]}]}, ["m"], defaults).table
    lrs = {(row["objective"], row["lr"]) for row in table.to_dict("records")}
    assert lrs == {("adaptive", "2e-05"), ("adaptive", "0.0001"), ("adaptive", "5e-05"), ("margin_mse", "0.0002")}
    assert all(name.endswith(f"/lr~{row['lr']}") for name, row in zip(names(table), table.to_dict("records")))
    # a name without the column (archived before it existed) takes its objective's default
    assert run_description(parse("model~m/objective~margin_mse/in_batch~false/tau~none/fraction~1"), defaults)[
        "lr"] == 2e-4
    with pytest.raises(ValueError, match=r"experiments\.g\[0\]: lr must be a positive number"):
        expand_experiments({"g": [{"objective": "adaptive", "lr": 0}]}, ["m"], defaults)


def test_group_training_applies_to_the_runs_its_groups_name():
    grid = expand_experiments({"sweep": [{"objective": "static", "tau": [0.1, 0.2], "lr": 1e-5}],
                               "final": [{"objective": "static", "tau": 0.2}]}, ["m"], DEFAULTS,
                              {"sweep": {"early_stopping": False, "validate_every": 100, "export": "last"}})
    sweep = {name: settings for name, settings in grid.training.items() if name.endswith("lr~1e-05")}
    assert len(sweep) == 2
    assert all(settings == {"early_stopping": False, "validate_every": 100, "export": Export.LAST}
               for settings in sweep.values())
    assert [settings for name, settings in grid.training.items() if name not in sweep] == [{}]


def test_two_groups_that_set_one_run_differently_are_an_error():
    with pytest.raises(ConfigError, match=r"named by groups a and b, which set early_stopping to False and True"):
        expand_experiments({"a": [{"objective": "adaptive"}], "b": [{"objective": "adaptive"}]}, ["m"], DEFAULTS,
                           {"a": {"early_stopping": False}, "b": {"early_stopping": True}})
    alike = expand_experiments({"a": [{"objective": "adaptive"}], "b": [{"objective": "adaptive"}]}, ["m"], DEFAULTS,
                               {"a": {"patience": 3}, "b": {"patience": 3}})
    assert list(alike.training.values()) == [{"patience": 3}]


def test_group_training_names_existing_groups_and_stopping_keys_only():
    with pytest.raises(ConfigError, match=r"group_training: \['typo'\] name no experiment group"):
        expand_experiments({"a": [{"objective": "adaptive"}]}, ["m"], DEFAULTS, {"typo": {"patience": 3}})
    with pytest.raises(ConfigError, match=r"group_training\.a: \['max_steps'\] cannot differ by group"):
        expand_experiments({"a": [{"objective": "adaptive"}]}, ["m"], DEFAULTS, {"a": {"max_steps": 3}})
