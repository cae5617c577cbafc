"""Ladders (rung budgets) and Hyperband brackets."""

from __future__ import annotations

import pytest

from budgetopt import Bracket, Ladder


@pytest.mark.parametrize(
    "args, rungs",
    [
        ((100, 2700, 3), (100, 300, 900, 2700)),
        ((1, 81, 3), (1, 3, 9, 27, 81)),
        ((10, 80, 2), (10, 20, 40, 80)),
        ((27, 729, 3), (27, 81, 243, 729)),
        ((100, 100, 3), (100,)),
    ],
)
def test_rungs_are_min_budget_times_powers_of_eta(args, rungs):
    assert Ladder(*args).rungs == rungs


@pytest.mark.parametrize(
    "args, rungs",
    [
        ((100, 2000, 3), (100, 300, 900, 2000)),
        ((100, 2701, 3), (100, 300, 900, 2700, 2701)),
        ((5, 7, 2), (5, 7)),
    ],
)
@pytest.mark.filterwarnings("ignore:Ladder.*its last step:UserWarning")
def test_last_rung_is_max_budget_exactly_when_not_a_power(args, rungs):
    assert Ladder(*args).rungs == rungs


def test_ladder_is_a_sequence_of_its_rungs():
    ladder = Ladder(100, 2700, 3)
    assert len(ladder) == 4
    assert list(ladder) == [100, 300, 900, 2700]
    assert ladder.rung_index(900) == 2
    assert ladder.rung_index(500) is None
    assert ladder == Ladder(100, 2700, 3) and hash(ladder) == hash(Ladder(100, 2700, 3))
    assert ladder != Ladder(100, 2700, 2)
    assert repr(ladder) == "Ladder(100, 2700, 3)"


def test_hyperband_brackets_match_the_classic_table():
    # Li et al. (JMLR 2018), R = 81, eta = 3: n = 81, 34, 15, 8, 5 trials at r = 1, 3, 9, 27, 81
    brackets = Ladder(1, 81, 3).brackets("hyperband")
    assert [b.n_trials for b in brackets] == [81, 34, 15, 8, 5]
    assert [b.rungs[0] for b in brackets] == [1, 3, 9, 27, 81]
    assert brackets[0] == Bracket(index=0, rungs=(1, 3, 9, 27, 81), n_trials=81)
    assert brackets[-1] == Bracket(index=4, rungs=(81,), n_trials=5)


def test_one_bracket_is_plain_successive_halving():
    (bracket,) = Ladder(100, 2700, 3).brackets()
    assert bracket == Bracket(index=0, rungs=(100, 300, 900, 2700), n_trials=27)


def test_first_brackets_are_the_most_aggressive():
    brackets = Ladder(1, 81, 3).brackets(2)
    assert [b.index for b in brackets] == [0, 1]
    assert [b.rungs for b in brackets] == [(1, 3, 9, 27, 81), (3, 9, 27, 81)]


def test_bracket_trial_counts_are_exact_integer_ceilings():
    # ceil(11 / 9 * 3**8) = 8019 exactly; the float product rounds up to 8020
    brackets = Ladder(1, 3**10, 3).brackets("hyperband")
    assert brackets[2].n_trials == 8019
    for b in brackets:
        s = len(brackets) - 1 - b.index
        assert b.n_trials * (s + 1) >= 11 * 3**s > (b.n_trials - 1) * (s + 1)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((300, 100, 3), ValueError, r"max_budget must be >= min_budget \(300\), got max_budget=100"),
        ((0, 100, 3), ValueError, r"min_budget must be an integer >= 1, got 0"),
        ((10, -1, 3), ValueError, r"max_budget must be an integer >= 1, got -1"),
        ((1.5, 100, 3), TypeError, r"min_budget must be an integer number of iterations, got 1\.5"),
        ((1, 100.0, 3), TypeError, r"max_budget must be an integer number of iterations, got 100\.0"),
        ((True, 100, 3), TypeError, r"min_budget must be an integer number of iterations, got True"),
        ((1, 100, 1), ValueError, r"reduction_factor must be an integer >= 2, got 1"),
        ((1, 100, 0), ValueError, r"reduction_factor must be an integer >= 2, got 0"),
        ((1, 100, 2.5), TypeError, r"reduction_factor must be an integer >= 2, got 2\.5"),
        ((1, 100, True), TypeError, r"reduction_factor must be an integer >= 2, got True"),
    ],
)
def test_bad_ladder_is_rejected_by_name(args, error, match):
    with pytest.raises(error, match=match):
        Ladder(*args)


@pytest.mark.parametrize(
    "brackets, error, match",
    [
        (0, ValueError, r"brackets must be in \[1, 5\] for the ladder \(1, 3, 9, 27, 81\).*got 0"),
        (6, ValueError, r"brackets must be in \[1, 5\].*got 6"),
        (1.5, TypeError, r"brackets must be an integer in \[1, 5\] or 'hyperband', got 1\.5"),
        ("all", TypeError, r"got 'all'"),
        (True, TypeError, r"got True"),
    ],
)
def test_brackets_out_of_range_are_rejected(brackets, error, match):
    with pytest.raises(error, match=match):
        Ladder(1, 81, 3).brackets(brackets)


def test_a_ladder_whose_last_step_is_short_says_so():
    import warnings

    with pytest.warns(UserWarning, match=r"rungs 100, 300, 900, 1000: its last step, 900 -> 1000, is 1.11x"):
        Ladder(100, 1000, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Ladder(100, 2000, 3).rungs == (100, 300, 900, 2000)  # 2.2x: no warning
        assert Ladder(100, 2700, 3).rungs == (100, 300, 900, 2700)
