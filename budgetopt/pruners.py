"""BudgetPruner: successive halving and Hyperband over budget-converged rung values."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from budgetopt._optuna import set_trial_user_attr, storage_of, study_id, trial_id
from budgetopt.attrs import ATTR_BRACKET, ATTR_DECISIONS, ATTR_ENDED, STUDY_ATTR_LADDER
from budgetopt.ladder import Bracket, Ladder

__all__ = ["ATTR_BRACKET", "ATTR_DECISIONS", "STUDY_ATTR_LADDER", "BudgetPruner"]


class BudgetPruner(BasePruner):
    """Asynchronous successive halving (or Hyperband) on a ladder of iteration budgets.

    Every trial is given a *plan*: the rung budgets of its bracket, from the bracket's
    first rung to ``max_budget``. :class:`~budgetopt.BudgetedRun` takes its budgets from
    that plan and trains each budget with a learning rate that decays to zero at it, so
    the value a trial reports at a rung is *budget-converged*; the pruner compares it
    only with the values other trials of the same bracket reported at the same budget.

    Example::

        study = optuna.create_study(
            direction="maximize",
            sampler=budgetopt.BudgetSampler(seed=0),
            pruner=budgetopt.BudgetPruner(min_budget=100, max_budget=2700, reduction_factor=3),
        )

    Promotion rule (asynchronous successive halving, Li et al., MLSys 2020, as in
    Optuna's ``SuccessiveHalvingPruner``): a trial that reports at a rung below
    ``max_budget`` continues when its value is among the top ``max(1, k // eta)`` of the
    ``k`` values its bracket has at that budget so far, its own included; ties favour
    the trial. While ``k < eta`` the rule keeps only a trial that is the best so far:
    Optuna cannot pause a trial and promote it later, as ASHA does, so the first trials
    of a rung must be judged on what exists, and keeping the current best is the
    choice that never promotes a trial that a later, complete rung would rank last. A
    value at a step that is not a rung of the trial's plan never prunes; a NaN value
    prunes. A trial never gets pruned at ``max_budget``: it has finished its plan.

    Concurrency guarantee (any storage, any number of workers): a trial writes its rung
    value (``trial.report``) before it reads the rung, so it always sees every value
    written before its own; of two trials deciding at the same moment, at least one
    sees the other's. Each decision is therefore exactly the sequential decision for an
    order in which the deciding trial reported after every value it saw, and never one
    made on a view missing an earlier value. Two simultaneous deciders may both see
    each other and both take the same last slot, which no single sequential order
    allows: this over-promotion is bounded by the number of trials deciding the same
    rung at the same moment. Each decision is recorded in the trial's user attr
    ``budgetopt.decisions`` (``{budget: [rank, k, promoted]}``) so that it can be
    audited.

    Cost: the pruner keeps, per process, the rung values of finished trials in sorted
    lists and re-reads only trials that are still running; a decision costs one
    ``get_all_trials(deepcopy=False)`` call and ``O(running + log n)`` work, whereas
    Optuna's pruners scan every trial and ``HyperbandPruner`` rebuilds a bracket study
    at every call.

    Args:
        min_budget: the first rung, in iterations (an integer >= 1).
        max_budget: the full budget, in iterations (an integer >= ``min_budget``).
        reduction_factor: ``eta``, an integer >= 2: keep the top 1/eta at each rung.
        brackets: ``1`` for successive halving; an integer up to the number of rungs,
            or ``"hyperband"`` for all of them: Hyperband brackets, bracket ``b``
            starting its trials at rung ``b``. Trials go to brackets in Hyperband's
            proportions by trial number (a fixed interleaved cycle), so the proportions
            hold across any number of workers without coordination.
    """

    def __init__(
        self,
        min_budget: int,
        max_budget: int,
        reduction_factor: int = 3,
        brackets: int | str = 1,
    ) -> None:
        self.ladder = Ladder(min_budget, max_budget, reduction_factor)
        self.brackets: tuple[Bracket, ...] = self.ladder.brackets(brackets)
        self._cycle = _interleave([b.n_trials for b in self.brackets])
        self._lock = threading.Lock()
        self._indexes: dict[tuple[int, int], _RungIndex] = {}
        self._described: set[tuple[int, int]] = set()
        self._decisions: dict[int, dict] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"], state["_indexes"], state["_described"], state["_decisions"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._indexes = {}
        self._described = set()
        self._decisions = {}

    # -- plans ----------------------------------------------------------------------

    def bracket_of(self, trial: FrozenTrial | optuna.trial.Trial) -> int:
        """The trial's bracket: the one recorded in its user attrs (a retried trial keeps
        its own), else the trial number's place in the Hyperband cycle."""
        recorded = trial.user_attrs.get(ATTR_BRACKET)
        return int(recorded) if recorded is not None else self._cycle[trial.number % len(self._cycle)]

    def plan(self, study: optuna.Study, trial: optuna.trial.Trial) -> tuple[int, ...]:
        """The budgets ``trial`` may reach; records its bracket (user attr) and, once per
        study, the ladder (study user attr ``budgetopt.ladder``)."""
        bracket = self.bracket_of(trial)
        if ATTR_BRACKET not in trial.user_attrs:
            trial.set_user_attr(ATTR_BRACKET, bracket)
        key = (id(storage_of(study)), study_id(study))
        if key not in self._described:
            if STUDY_ATTR_LADDER not in study.user_attrs:
                study.set_user_attr(STUDY_ATTR_LADDER, self.describe())
            self._described.add(key)
        return self.brackets[bracket].rungs

    def describe(self) -> dict:
        """The ladder and brackets, as stored in the study's user attrs."""
        return {
            "rungs": list(self.ladder.rungs),
            "reduction_factor": self.ladder.reduction_factor,
            "brackets": [{"index": b.index, "rungs": list(b.rungs), "n_trials": b.n_trials} for b in self.brackets],
        }

    # -- decisions ------------------------------------------------------------------

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        bracket = self.bracket_of(trial)
        rungs = self.brackets[bracket].rungs
        if step not in rungs or step == rungs[-1]:
            return False
        value = trial.intermediate_values[step]
        if value != value:  # NaN
            set_trial_user_attr(study, trial, ATTR_ENDED, f"pruned: NaN value at budget {step}")
            return True
        better, k, promoted = self._promotion(study, trial, bracket, step, value)
        # The FrozenTrial handed to prune() may predate our last write to it: merge with
        # this process's own record of the trial's decisions.
        decisions = self._decisions.setdefault(trial_id(trial), dict(trial.user_attrs.get(ATTR_DECISIONS, {})))
        decisions[str(step)] = [better + 1, k, promoted]
        set_trial_user_attr(study, trial, ATTR_DECISIONS, decisions)
        return not promoted


    def _promotion(
        self, study: optuna.Study, trial: FrozenTrial, bracket: int, budget: int, value: float
    ) -> tuple[int, int, bool]:
        """(values better than the trial's, values at the rung, promoted): the rule of the
        class docstring. A subclass may rank by something else (see
        :class:`budgetopt.promotion.ModelPromotionPruner`)."""
        with self._lock:
            index = self._indexes.setdefault((id(storage_of(study)), study_id(study)), _RungIndex(self))
            better, k = index.rank(study, trial, bracket, budget, value)
        return better, k, better < max(1, k // self.ladder.reduction_factor)


def _interleave(weights: list[int]) -> list[int]:
    """A cycle of ``sum(weights)`` indices, index ``i`` appearing ``weights[i]`` times,
    spread evenly (smooth weighted round robin), so any prefix follows the weights."""
    credit = [0] * len(weights)
    total = sum(weights)
    cycle = []
    for _ in range(total):
        credit = [c + w for c, w in zip(credit, weights)]
        i = max(range(len(weights)), key=lambda j: credit[j])
        credit[i] -= total
        cycle.append(i)
    return cycle


class _RungIndex:
    """One process's view of a study's rung values, refreshed incrementally.

    Values of finished trials (their rung values never change again) live in sorted
    lists per (bracket, budget); trials below ``self.settled`` are all finished and
    indexed. Only trials from there on -- running, waiting, or finished since the last
    refresh -- are looked at again.
    """

    def __init__(self, pruner: BudgetPruner) -> None:
        self.pruner = pruner
        self.settled = 0
        self.indexed: set[int] = set()  # finished trials past `settled`, already indexed
        self.finished: dict[tuple[int, int], list[float]] = defaultdict(list)

    def rank(self, study: optuna.Study, trial: FrozenTrial, bracket: int, budget: int, value: float) -> tuple[int, int]:
        """(values strictly better than ``value``, number of values) at (bracket, budget),
        counting ``trial``'s own value once."""
        maximize = study.direction == StudyDirection.MAXIMIZE
        trials = study.get_trials(deepcopy=False)
        open_values = []
        for t in trials[self.settled :]:
            if t.number == trial.number:
                continue
            if t.state.is_finished():
                if t.number not in self.indexed:
                    self.indexed.add(t.number)
                    if t.state != TrialState.FAIL:  # a failed trial's retry carries its values
                        self._add(t)
            elif budget in t.intermediate_values and self.pruner.bracket_of(t) == bracket:
                v = t.intermediate_values[budget]
                if v == v:
                    open_values.append(v)
        while self.settled < len(trials) and self.settled in self.indexed:
            self.indexed.discard(self.settled)
            self.settled += 1
        settled = self.finished.get((bracket, budget), [])
        if maximize:
            better = len(settled) - bisect.bisect_right(settled, value) + sum(v > value for v in open_values)
        else:
            better = bisect.bisect_left(settled, value) + sum(v < value for v in open_values)
        return better, len(settled) + len(open_values) + 1

    def _add(self, trial: FrozenTrial) -> None:
        bracket = self.pruner.bracket_of(trial)
        for budget in self.pruner.brackets[bracket].rungs:
            value = trial.intermediate_values.get(budget)
            if value is not None and value == value:
                bisect.insort(self.finished[(bracket, budget)], value)
