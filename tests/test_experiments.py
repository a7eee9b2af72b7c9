import pytest

from margin_retrieval.experiments import expand_experiments, fraction_size, run_description


def test_grid_crosses_lists_and_deduplicates_shared_runs():
    experiments = {
        "sweep": [{"objective": "static", "tau": [0.1, 1], "in_batch": [False, True]}],
        "fractions": [{"objective": "adaptive", "fraction": [0.5, 1.0]}],
        "comparison": [{"objective": "adaptive"}],
    }
    table = expand_experiments(experiments, ["student"])
    assert len(table) == 4 + 2
    shared = table[(table.objective == "adaptive") & (table.fraction == "1")]
    assert shared.group.tolist() == ["fractions,comparison"]
    assert set(table[table.objective == "static"].tau) == {"0.1", "1"}
    assert set(table.in_batch) == {"false", "true"}


def test_static_tau_int_and_float_are_the_same_run():
    table = expand_experiments({"a": [{"objective": "static", "tau": [1, 1.0]}]}, ["m"])
    assert len(table) == 1
    assert run_description(table.iloc[0].to_dict())["tau"] == 1.0


def test_batching_defaults_to_random_and_is_a_column_of_its_own():
    table = expand_experiments({"a": [{"objective": "infonce"}], "b": [{"objective": "infonce",
                                                                         "batching": ["random", "clustered"]}]}, ["m"])
    assert table.batching.tolist() == ["clustered", "random"]
    assert table[table.batching == "random"].group.tolist() == ["a,b"]
    assert run_description(table.iloc[0].to_dict())["batching"] == "clustered"


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"objective": "nope"}, "objective must be one of"),
        ({"objective": "static"}, "needs a numeric tau"),
        ({"objective": "adaptive", "tau": 0.2}, "only meaningful for the static"),
        ({"objective": "distributed", "in_batch": True}, "cannot be combined with in_batch"),
        ({"objective": "margin_mse", "in_batch": True}, "margin objectives only"),
        ({"objective": "adaptive", "fraction": 0}, "fraction must be in"),
        ({"objective": "adaptive", "colour": 1}, "unknown column"),
        ({"objective": "adaptive", "model": "other"}, "not a configured student"),
        ({"objective": "adaptive", "batching": "sorted"}, "batching must be one of"),
    ],
)
def test_bad_grids_name_the_group_and_the_problem(grid, message):
    with pytest.raises(ValueError, match=message) as error:
        expand_experiments({"my_group": [grid]}, ["m"])
    assert "my_group" in str(error.value)


def test_fraction_sizes_are_nested_prefixes():
    sizes = [fraction_size(809, f) for f in (0.125, 0.25, 0.5, 1.0)]
    assert sizes == sorted(sizes) and sizes[-1] == 809 and sizes[0] == 102
