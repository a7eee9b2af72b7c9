"""Successive halving and noise-aware target crossings on hand-computed curves."""

import pytest

from margin_retrieval.analysis.numbers.halving import (
    best_within, successive_halving, sustained_crossing, sustained_level,
)

CURVES = {
    "0.1": [(0, 0.50), (10, 0.55), (20, 0.60), (30, 0.62), (40, 0.61)],
    "0.2": [(0, 0.50), (10, 0.58), (20, 0.57), (30, 0.56)],
    "0.5": [(0, 0.50), (10, 0.52), (20, 0.65), (30, 0.70), (40, 0.71), (50, 0.69)],  # a late bloomer
    "1.0": [(0, 0.50), (5, 0.40)],  # stopped early
}


def test_halving_keeps_the_best_at_each_rung_and_charges_each_tau_its_steps():
    # Rung 0 (10 steps): best within 10 = .55, .58, .52, .50 -> 0.2 and 0.1 go on; 0.5 pruned at 10, 1.0 at its end (5).
    # Rung 1 (20 steps): 0.1 has .60, 0.2 has .58 -> 0.1 kept and trained to its end (40); 0.2 charged 20.
    result = successive_halving(CURVES, first_rung=10, eta=2)
    assert result.kept == "0.1"
    assert result.rungs == [["0.1", "0.2", "0.5", "1.0"], ["0.1", "0.2"], ["0.1"]]
    assert result.steps == {"0.1": 40, "0.2": 20, "0.5": 10, "1.0": 5}
    assert result.cost == 75


def test_halving_with_a_larger_first_rung_finds_the_late_bloomer():
    # Rung 0 (20 steps): .60, .58, .65, .50 -> 0.5 and 0.1; rung 1 (40): .71 vs .62 -> 0.5, trained to 50.
    result = successive_halving(CURVES, first_rung=20, eta=2)
    assert result.kept == "0.5"
    assert result.steps == {"0.1": 40, "0.2": 20, "0.5": 50, "1.0": 5}
    assert result.cost == 115


def test_halving_ties_go_to_the_earlier_tau_and_bad_arguments_are_refused():
    tied = {"a": [(0, 0.5), (10, 0.6)], "b": [(0, 0.5), (10, 0.6)]}
    assert successive_halving(tied, first_rung=10).kept == "a"
    assert successive_halving({"only": [(0, 0.5), (7, 0.6)]}, first_rung=10).cost == 7
    with pytest.raises(ValueError, match="eta"):
        successive_halving(tied, first_rung=10, eta=1)
    assert best_within([(10, 0.6)], 5) == float("-inf")


def test_sustained_crossing_ignores_a_lucky_validation():
    spiky = [(0, 0.50), (10, 0.62), (20, 0.55), (30, 0.61), (40, 0.63)]
    assert sustained_crossing(spiky, 0.6, hold=1) == 10
    assert sustained_crossing(spiky, 0.6, hold=2) == 30
    assert sustained_crossing([(0, 0.5), (10, 0.7)], 0.6, hold=3) == 10  # the run's end: all that follow
    assert sustained_crossing(spiky, 0.7, hold=2) is None


def test_sustained_level_is_the_highest_target_a_held_crossing_reaches():
    spiky = [(0, 0.50), (10, 0.62), (20, 0.55), (30, 0.61), (40, 0.63), (50, 0.60)]
    assert sustained_level(spiky, hold=1) == 0.63
    assert sustained_level(spiky, hold=2) == 0.61  # min(.61, .63); the spikes .62 and .63 fall to .55 and .60
    assert sustained_crossing(spiky, sustained_level(spiky, 2), hold=2) == 30
    assert sustained_crossing(spiky, sustained_level(spiky, 2) + 1e-9, hold=2) is None
    assert sustained_level([(0, 0.5), (10, 0.7)], hold=3) == 0.7  # the run's end: all that follow
    assert sustained_level([], hold=2) is None
    with pytest.raises(ValueError, match="hold must be >= 1"):
        sustained_level(spiky, hold=0)
