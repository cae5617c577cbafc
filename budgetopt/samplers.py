"""BudgetSampler: model-based sampling from budget-converged values of one budget."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from budgetopt._optuna import cached_trials, set_trial_user_attr, startup_trials, trial_id
from budgetopt.attrs import ATTR_BRACKET, ATTR_FIT_BUDGET, ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES
from budgetopt.errors import InputError, InputTypeError
from budgetopt.modes import MODE_TYPES
from budgetopt.pruners import BudgetPruner

__all__ = ["ATTR_FIT_BUDGET", "BudgetSampler", "budget_observations"]


class BudgetSampler(BaseSampler):
    """Feeds a base sampler (TPE by default) the values of one budget at a time.

    A trial of a budget-aware study reports one budget-converged value per rung it
    reaches (user attr ``budgetopt.rung_values``). Values at different budgets are not
    comparable -- a model trained for 100 iterations scores lower than one trained for
    2700 -- so the base sampler's model is fitted on the values of **one** budget: the
    largest budget with at least ``min_observations`` values (BOHB's rule, Falkner et
    al., ICML 2018). Every trial that has a value at that budget is shown to the base
    sampler as a complete trial with that value; the others are hidden. Values that a
    ``continue``-mode run reported mid-schedule are never used (its value at the end of
    its schedule is).

    With a :class:`~budgetopt.BudgetPruner` using Hyperband brackets, each new trial is
    given its bracket here (the pruner's interleaved cycle over trial numbers, so the
    bracket sizes follow Hyperband's proportions across all workers), recorded in the
    user attr ``budgetopt.bracket``. The budget the model was fitted on for a trial is
    recorded in ``budgetopt.fit_budget``.

    Single-objective only, like Optuna's own single-objective samplers (e.g.
    ``CmaEsSampler``): ``sample_independent`` and ``sample_relative`` raise
    ``ValueError`` on a study with more than one direction. A rung value is one number
    per budget, and Optuna's ``trial.report`` is single-objective.

    Example::

        study = optuna.create_study(
            direction="maximize",
            sampler=budgetopt.BudgetSampler(seed=0),
            pruner=budgetopt.BudgetPruner(min_budget=100, max_budget=2700),
        )

    Args:
        base_sampler: the sampler that does the modelling (default
            ``optuna.samplers.TPESampler(seed=seed)``). It must be an Optuna sampler.
        seed: seed of the default base sampler (ignored when ``base_sampler`` is given).
        min_observations: values a budget needs before the model is fitted on it.
            Default: BOHB's ``d + 3`` for ``d`` parameters (N_min = d + 1 plus 2), raised
            to the base sampler's ``n_startup_trials`` when it has one, so the base
            sampler never falls back to random search while some budget has enough
            values. When no budget has enough, the budget with the most values is used.
    """

    def __init__(
        self,
        base_sampler: BaseSampler | None = None,
        *,
        seed: int | None = None,
        min_observations: int | None = None,
    ) -> None:
        if base_sampler is None:
            base_sampler = optuna.samplers.TPESampler(seed=seed)
        if not isinstance(base_sampler, BaseSampler):
            raise InputTypeError(f"base_sampler must be an optuna.samplers.BaseSampler, got {type(base_sampler).__name__}")
        if isinstance(base_sampler, BudgetSampler):
            raise InputTypeError("base_sampler must not itself be a BudgetSampler")
        if min_observations is not None and (
            isinstance(min_observations, bool) or not isinstance(min_observations, int) or min_observations < 1
        ):
            raise InputError(f"min_observations must be an integer >= 1 or None, got {min_observations!r}")
        self.base_sampler = base_sampler
        self.min_observations = min_observations
        self._local = threading.local()
        self._complete: dict[tuple[int, int, int], FrozenTrial] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_local"], state["_complete"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._complete = {}

    def reseed_rng(self) -> None:
        self.base_sampler.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if isinstance(study.pruner, BudgetPruner) and ATTR_BRACKET not in trial.user_attrs:
            set_trial_user_attr(study, trial, ATTR_BRACKET, study.pruner.bracket_of(trial))
        self._local.view = None
        self.base_sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.base_sampler.infer_relative_search_space(self._view(study, trial), trial)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        _single_objective(study)
        return self.base_sampler.sample_relative(self._view(study, trial), trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        _single_objective(study)
        return self.base_sampler.sample_independent(self._view(study, trial), trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._local.view = None
        self.base_sampler.after_trial(study, trial, state, values)

    def _view(self, study: Study, trial: FrozenTrial) -> Study:
        """The study as the base sampler sees it for ``trial`` (built once per trial)."""
        cached = getattr(self._local, "view", None)
        if cached is not None and cached[0] == trial.number:
            return cached[1]
        observations = budget_observations(cached_trials(study))
        if not observations:  # nothing budget-aware yet: the study as it is
            view: Any = study  # a Study, or a _BudgetView standing in for one
        else:
            budget = self.fit_budget(observations)
            set_trial_user_attr(study, trial, ATTR_FIT_BUDGET, budget)
            view = _BudgetView(study, [self._as_complete(t, v, budget) for t, v in observations[budget]])
        self._local.view = (trial.number, view)
        return view

    def fit_budget(self, observations: dict[int, list[tuple[FrozenTrial, float]]]) -> int:
        """The budget whose values the model is fitted on (see the class docstring)."""
        needed = self.min_observations
        if needed is None:
            dims = len({name for pairs in observations.values() for t, _ in pairs for name in t.params})
            needed = max(dims + 3, startup_trials(self.base_sampler))
        enough = [b for b, pairs in observations.items() if len(pairs) >= needed]
        if enough:
            return max(enough)
        return max(observations, key=lambda b: (len(observations[b]), b))

    def _as_complete(self, trial: FrozenTrial, value: float, budget: int) -> FrozenTrial:
        """``trial`` as a complete trial with its value at ``budget`` (cached once finished)."""
        key = (trial_id(trial), trial.number, budget)
        cached = self._complete.get(key)
        if cached is None:
            cached = _complete_at(trial, value)
            if trial.state.is_finished():
                self._complete[key] = cached
        return cached


def budget_observations(trials: list[FrozenTrial]) -> dict[int, list[tuple[FrozenTrial, float]]]:
    """Budget -> (trial, budget-converged value) over trials that are not failed.

    A ``continue``-mode trial's values count only at the end of its schedule (the last
    budget of its plan); every other mode's rung values are budget-converged.
    """
    observations: dict[int, list[tuple[FrozenTrial, float]]] = {}
    for t in trials:
        rung_values = t.user_attrs.get(ATTR_RUNG_VALUES)
        if not rung_values or t.state == TrialState.FAIL:
            continue
        mode = MODE_TYPES.get(t.user_attrs.get(ATTR_MODE))  # type: ignore[arg-type]
        # None: every value is converged for its budget (a budget-aware mode, or no mode recorded)
        converged = None if mode is None or mode.budget_aware else {str(b) for b in mode.converged(t.user_attrs[ATTR_PLAN])}
        for budget, value in rung_values.items():
            if (converged is None or budget in converged) and value is not None and value == value:
                observations.setdefault(int(budget), []).append((t, value))
    return observations


def _complete_at(trial: FrozenTrial, value: float) -> FrozenTrial:
    return FrozenTrial(
        number=trial.number,
        state=TrialState.COMPLETE,
        value=value,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs={},
        system_attrs=trial.system_attrs,
        intermediate_values={},
        trial_id=trial_id(trial),
    )


def _single_objective(study: Study) -> None:
    if len(study.directions) > 1:
        # Optuna's own samplers' wording for the same refusal
        raise InputError("If the study is being used for multi-objective optimization, BudgetSampler cannot be used.")


class _BudgetView:
    """A study whose trials are the complete-at-one-budget trials; all else delegates.

    It implements Optuna's private method for reading trials (the underscored
    get_trials), which Optuna's own samplers call on the study they are given (``tests/test_sampler_conformance.py``
    runs every Optuna sampler through it and fails when they stop doing so)."""

    def __init__(self, study: Study, trials: list[FrozenTrial]) -> None:
        self._study = study
        self._trials = trials

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = self._trials if states is None else [t for t in self._trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else list(trials)

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()
