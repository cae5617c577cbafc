import collections

import optuna
import pytest
from optuna.trial import TrialState

import budgetopt
from budgetopt.attrs import ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES
from budgetopt.pruners import ATTR_BRACKET
from budgetopt.samplers import ATTR_FIT_BUDGET

from synthetic import make_study, objective


class SpySampler(optuna.samplers.RandomSampler):
    """Random sampling that records the trials and values it was shown."""

    def __init__(self):
        super().__init__(seed=0)
        self.seen = []

    def sample_independent(self, study, trial, name, distribution):
        complete = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.seen.append({t.number: t.value for t in complete})
        return super().sample_independent(study, trial, name, distribution)


def _add(study, x, rung_values, mode="restart", plan=(27, 81), state=TrialState.PRUNED):
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            value=None if state != TrialState.COMPLETE else rung_values[max(rung_values)],
            params={"x": x},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            user_attrs={ATTR_RUNG_VALUES: {str(b): v for b, v in rung_values.items()}, ATTR_MODE: mode, ATTR_PLAN: list(plan)},
            intermediate_values=rung_values,
        )
    )


def test_model_is_fitted_on_one_budget_never_a_mix():
    # Budget 27 ranks trials in one order, budget 81 in the opposite one.
    spy = SpySampler()
    study = optuna.create_study(direction="maximize", sampler=budgetopt.BudgetSampler(spy, min_observations=3))
    for i in range(6):
        x = i / 10
        _add(study, x, {27: x, 81: 1 - x} if i < 3 else {27: x})
    study.ask().suggest_float("x", 0, 1)
    seen = spy.seen[-1]
    # 81 has 3 values (enough): the sampler sees exactly those, valued at 81.
    assert seen == {0: 1.0, 1: 0.9, 2: 0.8}
    assert study.trials[-1].user_attrs[ATTR_FIT_BUDGET] == 81


def test_falls_back_to_the_budget_with_most_values():
    spy = SpySampler()
    study = optuna.create_study(direction="maximize", sampler=budgetopt.BudgetSampler(spy, min_observations=5))
    for i in range(4):
        _add(study, i / 10, {27: i / 10, 81: 1 - i / 10} if i < 2 else {27: i / 10})
    study.ask().suggest_float("x", 0, 1)
    assert spy.seen[-1] == {i: i / 10 for i in range(4)}


def test_continue_mode_values_count_only_at_the_end_of_their_schedule():
    spy = SpySampler()
    study = optuna.create_study(direction="maximize", sampler=budgetopt.BudgetSampler(spy, min_observations=1))
    _add(study, 0.1, {27: 0.3, 81: 0.5}, mode="continue", state=TrialState.COMPLETE)
    _add(study, 0.2, {27: 0.9}, mode="continue")  # mid-schedule only: never used
    study.ask().suggest_float("x", 0, 1)
    assert spy.seen[-1] == {0: 0.5}


def test_default_rule_needs_bohb_count_raised_to_tpe_startup():
    sampler = budgetopt.BudgetSampler(seed=0)
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trial = optuna.trial.create_trial(params={"x": 0.1}, distributions=distributions, value=0.1)
    trials = {27: [(trial, 0.1)] * 12, 81: [(trial, 0.1)] * 9}
    # d = 1 -> BOHB needs 4, TPE's startup is 10: 81 has 9, so 27 is used.
    assert sampler.fit_budget(trials) == 27
    trials[81] *= 2
    assert sampler.fit_budget(trials) == 81


def test_every_distribution_type_and_conditional_spaces():
    def obj(trial):
        trial.suggest_float("f", -1, 1)
        trial.suggest_float("log", 1e-4, 1, log=True)
        trial.suggest_float("step", 0, 1, step=0.25)
        trial.suggest_int("i", 1, 9)
        trial.suggest_int("ilog", 1, 1024, log=True)
        kind = trial.suggest_categorical("kind", ["sgd", "adam", None])
        if kind == "sgd":
            trial.suggest_float("momentum", 0, 0.99)
        else:
            trial.suggest_int("beta_pow", 1, 4)
        return objective(trial)

    study = make_study(None, "all", seed=3)
    study.optimize(obj, n_trials=40)
    assert all(t.state != TrialState.FAIL for t in study.trials)
    later = study.trials[20:]
    assert any(t.user_attrs.get(ATTR_FIT_BUDGET) for t in later)
    for t in study.trials:
        assert t.params["step"] in (0, 0.25, 0.5, 0.75, 1.0)
        assert ("momentum" in t.params) == (t.params["kind"] == "sgd")


def test_enqueued_params_are_used_as_given():
    study = make_study(None, "enq", seed=0)
    study.enqueue_trial({"lr": 0.0123, "width": 7})
    study.optimize(objective, n_trials=3)
    assert study.trials[0].params == {"lr": 0.0123, "width": 7}


def test_seeded_sequential_runs_are_reproducible():
    def params(seed):
        study = make_study(None, "rep", seed=seed)
        study.optimize(objective, n_trials=25)
        return [t.params for t in study.trials]

    assert params(5) == params(5)
    assert params(5) != params(6)


def test_sampler_records_the_bracket_in_hyperband_proportions():
    study = make_study(None, "hb", seed=0, brackets="hyperband")
    study.optimize(objective, n_trials=17)
    counts = collections.Counter(t.user_attrs[ATTR_BRACKET] for t in study.trials)
    assert [counts[b] for b in range(3)] == [b.n_trials for b in study.pruner.brackets]


def test_threads_n_jobs():
    study = make_study(None, "jobs", seed=0)
    study.optimize(objective, n_trials=30, n_jobs=2)
    assert len(study.trials) == 30
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


def test_resumed_study_fits_on_stored_values(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    make_study(url, "r", seed=0).optimize(objective, n_trials=20)
    study = make_study(url, "r", seed=1)  # a new process would build exactly this
    study.optimize(objective, n_trials=1)
    assert len(study.trials) == 21
    assert study.trials[-1].user_attrs[ATTR_FIT_BUDGET] in (3, 9, 27)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(base_sampler="tpe"), TypeError, "base_sampler must be an optuna.samplers.BaseSampler, got str"),
        (dict(min_observations=0), ValueError, "min_observations must be an integer >= 1 or None, got 0"),
        (dict(base_sampler=budgetopt.BudgetSampler()), TypeError, "must not itself be a BudgetSampler"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        budgetopt.BudgetSampler(**kwargs)
