import collections
import math
import random

import optuna
import pytest
import torch
from optuna.trial import TrialState

import budgetopt
from budgetopt.pruners import ATTR_BRACKET, ATTR_DECISIONS

from synthetic import make_study, objective


def _finished(study, values_by_budget, bracket=0, state=TrialState.PRUNED):
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=None if state != TrialState.COMPLETE else max(values_by_budget.values()),
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            user_attrs={ATTR_BRACKET: bracket},
            intermediate_values=values_by_budget,
        )
    )


def _decide(study, value, budget, bracket=0):
    trial = study.ask()
    trial.set_user_attr(ATTR_BRACKET, bracket)
    trial.report(value, budget)
    return study.pruner.prune(study, study._storage.get_trial(trial._trial_id))


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_rung_with_known_values_promotes_exactly_the_top_third(direction):
    values = [i / 10 for i in range(10)]
    promoted = []
    for new in values:
        study = optuna.create_study(direction=direction, pruner=budgetopt.BudgetPruner(27, 729, 3))
        for v in values:
            if v != new:
                _finished(study, {27: v})
        if not _decide(study, new, 27):
            promoted.append(new)
    # 10 values at the rung, eta 3: the top 10 // 3 = 3 continue.
    best = sorted(values, reverse=direction == "maximize")[:3]
    assert sorted(promoted) == sorted(best)


def test_first_trials_of_a_rung_continue_only_when_best_so_far():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(27, 729, 3))
    assert _decide(study, 0.5, 27) is False  # alone: best so far
    assert _decide(study, 0.4, 27) is True  # 2 values, slots max(1, 0) = 1: not the best
    assert _decide(study, 0.6, 27) is False


def test_value_at_a_non_rung_step_never_prunes():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(27, 729, 3))
    for v in (0.9, 0.8, 0.7, 0.95):
        _finished(study, {27: v, 50: v})
    assert _decide(study, 0.0, 50) is False
    assert _decide(study, 0.0, 28) is False


def test_never_prunes_at_the_full_budget():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(27, 729, 3))
    for v in (0.9, 0.8, 0.7, 0.95):
        _finished(study, {729: v}, state=TrialState.COMPLETE)
    assert _decide(study, 0.0, 729) is False


def test_nan_at_a_rung_prunes_with_its_reason():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(27, 729, 3))
    trial = study.ask()
    trial.report(float("nan"), 27)
    assert study.pruner.prune(study, study._storage.get_trial(trial._trial_id)) is True
    assert "NaN" in study._storage.get_trial(trial._trial_id).user_attrs["budgetopt.ended"]


def test_brackets_compete_separately():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(27, 729, 3, brackets=2))
    for v in (0.9, 0.8, 0.95, 0.85, 0.99, 0.97):
        _finished(study, {81: v}, bracket=0)
    # Bracket 1 starts at 81: its first trial there is alone, whatever bracket 0 reached.
    assert _decide(study, 0.1, 81, bracket=1) is False
    assert _decide(study, 0.1, 81, bracket=0) is True


def test_decisions_are_recorded_for_audit():
    study = optuna.create_study(direction="maximize", pruner=budgetopt.BudgetPruner(27, 729, 3))
    for v in (0.1, 0.2, 0.3, 0.4, 0.5):
        _finished(study, {27: v})
    _decide(study, 0.45, 27)
    trial = study.trials[-1]
    assert trial.user_attrs[ATTR_DECISIONS] == {"27": [2, 6, True]}


def test_hyperband_trials_start_at_their_brackets_budget():
    study = make_study(None, "hb", seed=0, brackets="hyperband")
    study.optimize(objective, n_trials=26)
    pruner = study.pruner
    counts = collections.Counter(t.user_attrs[ATTR_BRACKET] for t in study.trials)
    # Ladder (3, 9, 27): Hyperband's n = ceil(3 / (s + 1) * 3**s) = 9, 5, 3 per bracket.
    assert [b.n_trials for b in pruner.brackets] == [9, 5, 3]
    assert counts[0] >= counts[1] >= counts[2] > 0
    for t in study.trials:
        bracket = pruner.brackets[t.user_attrs[ATTR_BRACKET]]
        assert t.user_attrs["budgetopt.plan"] == list(bracket.rungs)
        assert min(t.intermediate_values) == bracket.rungs[0]


def test_bracket_cycle_follows_hyperband_proportions_exactly():
    pruner = budgetopt.BudgetPruner(1, 81, 3, brackets="hyperband")
    n = [b.n_trials for b in pruner.brackets]
    assert n == [81, 34, 15, 8, 5]
    first_cycle = collections.Counter(pruner._cycle[: sum(n)])
    assert [first_cycle[i] for i in range(5)] == n
    # Any prefix stays close to the proportions (interleaved, not blocked).
    prefix = collections.Counter(pruner._cycle[:30])
    assert all(abs(prefix[i] - 30 * n[i] / sum(n)) <= 1 for i in range(5))


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_same_decisions_as_optunas_successive_halving(direction):
    ours = budgetopt.BudgetPruner(27, 729, 3)
    sha = optuna.pruners.SuccessiveHalvingPruner(min_resource=27, reduction_factor=3, min_early_stopping_rate=0)
    study = optuna.create_study(direction=direction, pruner=ours)
    rng = random.Random(0)
    decisions = []

    def obj(trial):
        trial.suggest_float("x", 0, 1)
        plan = ours.plan(study, trial)
        for budget in plan:
            value = round(rng.random(), 2)  # two decimals: ties happen
            trial.report(value, budget)
            if budget == plan[-1]:
                return value
            frozen = study._storage.get_trial(trial._trial_id)
            decision = ours.prune(study, frozen)
            decisions.append((decision, sha.prune(study, frozen)))
            if decision:
                raise optuna.TrialPruned()

    study.optimize(obj, n_trials=300)
    assert len(decisions) > 400
    assert all(a == b for a, b in decisions)
    assert sum(a for a, _ in decisions) > 200  # many prunes, not a vacuous agreement


@pytest.mark.parametrize("storage_kind", ["memory", "sqlite", "journal"])
def test_works_on_every_storage(tmp_path, storage_kind):
    storage = {
        "memory": None,
        "sqlite": f"sqlite:///{tmp_path}/s.db",
        "journal": optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))),
    }[storage_kind]
    study = make_study(storage, "s", seed=1)
    study.optimize(objective, n_trials=15)
    states = collections.Counter(t.state for t in study.trials)
    assert states[TrialState.PRUNED] > 0 and states[TrialState.COMPLETE] > 0
    assert states[TrialState.FAIL] == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(min_budget=27, max_budget=729, brackets=0), r"brackets must be in \[1, 4\].*got 0"),
        (dict(min_budget=27, max_budget=729, brackets=5), r"brackets must be in \[1, 4\].*got 5"),
        (dict(min_budget=27, max_budget=729, brackets="auto"), r"brackets must be an integer.*'auto'"),
        (dict(min_budget=729, max_budget=27), r"max_budget must be >= min_budget \(729\).*27"),
        (dict(min_budget=27, max_budget=729, reduction_factor=1), r"reduction_factor must be an integer >= 2, got 1"),
        (dict(min_budget=0, max_budget=729), r"min_budget must be an integer >= 1, got 0"),
        (dict(min_budget=2.5, max_budget=729), r"min_budget must be an integer number of iterations, got 2.5"),
    ],
)
def test_impossible_arguments_fail_at_construction(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        budgetopt.BudgetPruner(**kwargs)


def _tiny():
    model = torch.nn.Linear(1, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_run_without_budget_pruner_or_budgets_says_so():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner())
    trial = study.ask()
    with pytest.raises(ValueError, match="no BudgetPruner .*MedianPruner.*budgets="):
        budgetopt.BudgetedRun(trial, *_tiny())
    run = budgetopt.BudgetedRun(trial, *_tiny(), budgets=[2, 4])
    assert run.budgets == (2, 4)


def test_multi_objective_study_is_not_supported():
    study = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match="multi-objective"):
        budgetopt.BudgetedRun(study.ask(), *_tiny())


def test_pruned_trial_records_where_and_why():
    study = make_study(None, "why", seed=0)
    study.optimize(objective, n_trials=20)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned
    for t in pruned:
        budget = max(t.intermediate_values)
        assert t.user_attrs["budgetopt.ended"] == f"pruned at budget {budget}"
        assert t.user_attrs[ATTR_DECISIONS][str(budget)][2] is False
        assert t.user_attrs["budgetopt.compute"] == sum(b for b in t.user_attrs["budgetopt.plan"] if b <= budget)
    assert all(math.isfinite(t.value) for t in study.trials if t.state == TrialState.COMPLETE)
