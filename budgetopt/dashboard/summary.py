"""A study, read once: its ladder and the budgetopt user attrs of its trials (the data
that the note, the figures and ``budgetopt report`` describe)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from budgetopt._optuna import trial_id
from budgetopt.attrs import (
    ATTR_BRACKET,
    ATTR_COMPUTE,
    ATTR_DECISIONS,
    ATTR_ENDED,
    ATTR_MODE,
    ATTR_PLAN,
    ATTR_PROFILE,
    ATTR_RUNG_VALUES,
    ATTR_SCHEDULE,
    STUDY_ATTR_LADDER,
    retried_numbers,
)
from budgetopt.errors import InputError
from budgetopt.frontier import Frontier, FrontierFit, fit_frontier, frontier
from budgetopt.keep import kept_model_id
from budgetopt.modes import MODE_TYPES, describe_schedule, get_mode
from budgetopt.schedules import PROFILES


@dataclass
class TrialRecord:
    """The budgetopt user attrs of one trial, parsed (rung budgets as ints)."""

    number: int
    trial_id: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    mode: str | None
    plan: tuple[int, ...]
    profile: str | None
    rung_values: dict[int, float]
    compute: int
    ended: str | None
    bracket: int | None
    decisions: dict[int, list]
    schedule: dict | None = None  # budgetopt.schedule; None when the trial did not record one

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        values = attrs.get(ATTR_RUNG_VALUES)
        rung_values = {int(b): float(v) for b, v in values.items()} if values else dict(trial.intermediate_values)
        mode, profile = attrs.get(ATTR_MODE), attrs.get(ATTR_PROFILE)
        return cls(
            number=trial.number,
            trial_id=trial_id(trial),
            state=trial.state,
            value=trial.value if trial.state == TrialState.COMPLETE and len(trial.values or ()) == 1 else None,
            params=dict(trial.params),
            mode=mode,
            plan=tuple(int(b) for b in attrs.get(ATTR_PLAN, ())),
            profile=profile,
            rung_values=dict(sorted(rung_values.items())),
            compute=int(attrs.get(ATTR_COMPUTE, 0)),
            ended=attrs.get(ATTR_ENDED),
            bracket=attrs.get(ATTR_BRACKET),
            decisions={int(b): d for b, d in attrs.get(ATTR_DECISIONS, {}).items()},
            schedule=attrs.get(ATTR_SCHEDULE) or _bare_schedule(mode, profile),
        )

    @property
    def last_rung(self) -> int | None:
        """The largest budget this trial reported (or, with no report, its first budget)."""
        if self.rung_values:
            return max(self.rung_values)
        return self.plan[0] if self.plan else None

    @property
    def budget_aware(self) -> bool:
        """Whether its rung values are converged for their budget (restart, branch); not
        for the continue baseline or a trial with no budgetopt mode."""
        mode = MODE_TYPES.get(self.mode or "")
        return mode is not None and mode.budget_aware

    @property
    def schedule_words(self) -> str | None:
        """Its schedule in words (the profile's name when no schedule was recorded)."""
        return describe_schedule(self.schedule) if self.schedule else self.profile


def _bare_schedule(mode: str | None, profile: str | None) -> dict | None:
    """The schedule of a trial that recorded only a mode and a bare profile name (a
    simulated trial, or one written before ``budgetopt.schedule``); None otherwise."""
    if mode is not None and mode in MODE_TYPES and profile in PROFILES:
        return get_mode(mode).schedule(profile)
    return None


@dataclass
class StudySummary:
    """Everything the note, the figures and ``budgetopt report`` say about a study."""

    name: str
    direction: str
    ladder: dict | None
    trials: list[TrialRecord]  # a retried attempt is left out: its retry carries its work
    states: Counter = field(default_factory=Counter)
    retried: int = 0  # attempts of a dead worker that were retried
    frontier: Frontier | None = None  # None: no budget-converged value yet (a baseline study)
    fit: FrontierFit | None = None
    kept: dict[int, bool] = field(default_factory=dict)  # budget -> the frontier trial's model there was kept

    @property
    def rungs(self) -> tuple[int, ...]:
        if self.ladder:
            return tuple(self.ladder["rungs"])
        return tuple(sorted({b for t in self.trials for b in (*t.plan, *t.rung_values)}))

    @property
    def max_budget(self) -> int:
        return self.rungs[-1] if self.rungs else 0

    @property
    def modes(self) -> Counter:
        return Counter(t.mode for t in self.trials if t.mode)

    @property
    def profiles(self) -> Counter:
        """Trials per schedule, in words."""
        return Counter(t.schedule_words for t in self.trials if t.schedule_words)

    @property
    def budget_aware_trials(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.budget_aware]

    @property
    def is_baseline(self) -> bool:
        """A study with trials, none of them budget-aware: every trial a full-length
        schedule judged mid-schedule (continue mode), or plain Optuna trials."""
        return bool(self.trials) and not self.budget_aware_trials

    def schedule_of(self, mode: str) -> dict | None:
        """The schedule the study's trials of ``mode`` ran most often (None: no such trial)."""
        counts = Counter(json.dumps(t.schedule, sort_keys=True) for t in self.trials if t.mode == mode and t.schedule)
        return json.loads(counts.most_common(1)[0][0]) if counts else None

    @property
    def compute(self) -> int:
        """Iterations executed by all trials, re-done ones included."""
        return sum(t.compute for t in self.trials)

    @property
    def full_budget_compute(self) -> int:
        """What training the same trials for the full budget each would have cost."""
        return len(self.trials) * self.max_budget

    def reached(self, budget: int) -> list[TrialRecord]:
        return [t for t in self.trials if budget in t.rung_values]

    def went_on(self, budget: int) -> list[TrialRecord]:
        """Trials that reached ``budget`` and were promoted past it (reached a larger
        budget, or were promoted and are still training)."""
        return [
            t
            for t in self.reached(budget)
            if any(b > budget for b in t.rung_values) or (t.decisions.get(budget) or [None] * 3)[2] is True
        ]

    def best(self, n: int = 1) -> list[TrialRecord]:
        """The ``n`` best completed trials by value, best first."""
        done = [t for t in self.trials if t.value is not None and math.isfinite(t.value)]
        return sorted(done, key=lambda t: float(t.value or 0.0), reverse=self.direction == "maximize")[:n]


def summarize(study: optuna.Study) -> StudySummary:
    """Read ``study`` once: its ladder and the budgetopt user attrs of its trials.

    Raises ValueError when the study has no budgetopt trial and no ladder.
    """
    trials = study.get_trials(deepcopy=False)
    ladder = study.user_attrs.get(STUDY_ATTR_LADDER)
    # A retry of a dead worker's trial carries the work of the attempts before it.
    retried = retried_numbers(trials)
    records = [TrialRecord.from_trial(t) for t in trials if ATTR_PLAN in t.user_attrs and t.number not in retried]
    if not records and ladder is None:
        raise InputError(
            f"study {study.study_name!r} is not a budgetopt study: no trial has a {ATTR_PLAN!r} user attr "
            "(trials are written by budgetopt.BudgetedRun)"
        )
    direction = "maximize" if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    states = Counter(t.state.name.lower() for t in trials if t.number not in retried)
    try:
        front: Frontier | None = frontier(study)
    except ValueError:  # no budget-converged value: a baseline study, or none reported yet
        front = None
    fit = None if front is None else fit_frontier(front)
    by_number = {t.number: t for t in trials}
    kept = {r.budget: kept_model_id(by_number[r.trial], r.budget) is not None for r in front or () if r.trial is not None}
    return StudySummary(study.study_name, direction, ladder, records, states, len(retried), front, fit, kept)


def is_budgetopt_study(study: optuna.Study) -> bool:
    """True when the study has a budgetopt ladder or a trial run by BudgetedRun."""
    if STUDY_ATTR_LADDER in study.user_attrs:
        return True
    return any(ATTR_PLAN in t.user_attrs for t in study.get_trials(deepcopy=False))


def rung_table(summary: StudySummary) -> list[tuple[int, int, int, int]]:
    """``(budget, reached, went on, stopped there)`` for each rung of the ladder."""
    rows = []
    for budget in summary.rungs:
        reached = len(summary.reached(budget))
        went_on = len(summary.went_on(budget))
        rows.append((budget, reached, went_on, reached - went_on))
    return rows
