"""A study's frontier: for every budget of its ladder, the best configuration and its value.

Budget-converged values (restart and branch modes: a learning rate decayed to zero at
that budget) answer, at every rung, the paper's own question: *given this budget, which
configuration should I train, and what will it score?* Most of those values belong to
trials the pruner stopped, so the frontier reads every trial, pruned and running ones
included, not only the completed ones ``study.best_trial`` looks at. ``continue``
values are read mid-schedule (the learning rate still high): they are left out unless
asked for, and then labelled.

:func:`frontier` reads the study through Optuna's public API (any storage, workers still
writing); :func:`fit_frontier` fits what longer training is worth.

Why the fit's form. The frontier's value against budget is fitted as a saturating power
law, ``v(B) = a - b * B**(-c)`` (``+`` for a loss): the form in which a model's loss or
error falls with training steps and data in the scaling-law literature (Kaplan et al.
2020; Hoffmann et al. 2022, ``E + B / D**beta``), three parameters, monotone, with a
ceiling ``a``. ``studies/frontier_fit.py`` checks it on the committed tables against a
saturating exponential (``a - b * exp(-c * B / B_max)``, the other common choice): fitted
on the lower rungs, each form predicts the top rung's frontier value, and the report
gives the error and how often the bootstrap interval covers the value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from budgetopt._optuna import storage_of, trial_records
from budgetopt.attrs import (
    ATTR_COMPUTE,
    ATTR_MODE,
    ATTR_PLAN,
    ATTR_RUNG_VALUES,
    ATTR_SCHEDULE,
    STUDY_ATTR_LADDER,
    compute_spent,
    retried_numbers,
)
from budgetopt.errors import InputError, MissingPathError
from budgetopt.modes import MODE_TYPES, get_mode, mode_of_schedule
from budgetopt.trial_io import rung_values_of

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = ["Frontier", "FrontierFit", "FrontierRow", "fit_frontier", "frontier", "frontier_text", "kept_state_dict", "load_model"]

MIN_FIT_BUDGETS = 3  # a three-parameter curve needs at least three budgets
BOOTSTRAP = 200  # resampled sets of trials for the fit's interval


@dataclass(frozen=True)
class FrontierRow:
    """One budget of the frontier.

    ``trial``/``params``/``value``: the best trial measured at ``budget`` (None when no
    trial was); ``measured``: trials with a value at this budget; ``runner_up``: the
    second best value and ``margin`` how much better the best is (in the study's
    direction, so never negative); ``compute``: iterations the study spent on this
    budget's values (each trial's segment for it, re-done iterations included);
    ``gain``: how much better the best is than the previous budget's best;
    ``mid_schedule``: the best value is a ``continue`` trial's, read mid-schedule (only
    with ``include_continue=True``).
    """

    budget: int
    trial: int | None
    params: dict[str, Any]
    value: float | None
    measured: int
    runner_up: float | None
    margin: float | None
    compute: int
    gain: float | None
    mid_schedule: bool = False


@dataclass(frozen=True)
class Frontier:
    """A study's frontier: one :class:`FrontierRow` per budget of its ladder, smallest first."""

    study: str
    direction: str
    rows: tuple[FrontierRow, ...]
    compute: int  # iterations the whole study spent, re-done ones included
    trials: int  # trials read (a retried attempt of a dead worker not counted)
    include_continue: bool = False
    _values: dict[int, list[tuple[int, float]]] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[FrontierRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def budgets(self) -> tuple[int, ...]:
        return tuple(r.budget for r in self.rows)

    def row(self, budget: int) -> FrontierRow:
        """The row of ``budget``; a ValueError names the ladder's budgets."""
        for r in self.rows:
            if r.budget == budget:
                return r
        raise InputError(f"budget {budget} is not on the study's ladder: its budgets are {', '.join(map(str, self.budgets))}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the study, its direction, compute and trials, and the rows."""
        return {
            "study": self.study,
            "direction": self.direction,
            "compute": self.compute,
            "trials": self.trials,
            "include_continue": self.include_continue,
            "rows": [asdict(r) for r in self.rows],
        }

    def to_dataframe(self):
        """One row per budget, params as ``param_<name>`` columns (needs pandas: ``budgetopt[bench]``)."""
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise ModuleNotFoundError("Frontier.to_dataframe needs pandas: pip install pandas") from None

        records = []
        for r in self.rows:
            record = {k: v for k, v in asdict(r).items() if k != "params"}
            record.update({f"param_{k}": v for k, v in r.params.items()})
            records.append(record)
        return pd.DataFrame.from_records(records).set_index("budget")


def _segment_costs(trial: FrozenTrial) -> dict[int, int]:
    """Iterations each budget of the trial's plan cost it (its mode's formula)."""
    attrs = trial.user_attrs
    plan = [int(b) for b in attrs.get(ATTR_PLAN, ())]
    schedule = attrs.get(ATTR_SCHEDULE)
    name = attrs.get(ATTR_MODE)
    if not plan or name not in MODE_TYPES:
        return {}
    mode = mode_of_schedule(schedule) if schedule else get_mode(name)
    totals = [mode.compute(plan, k) for k in range(len(plan))]
    return {b: totals[k] - (totals[k - 1] if k else 0) for k, b in enumerate(plan)}


_FRONTIER_ATTRS = (ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES, ATTR_SCHEDULE, ATTR_COMPUTE)


class _LazyParams:
    """``params[number]``: a trial's params, read from the storage only for the trials a
    frontier row shows (the SQL path reads no params)."""

    def __init__(self, study: optuna.Study, trials: dict[int, Any], from_storage: bool) -> None:
        self._study, self._trials, self._from_storage = study, trials, from_storage

    def __getitem__(self, number: int) -> dict:
        trial = self._trials[number]
        if self._from_storage:
            return dict(storage_of(self._study).get_trial(trial.trial_id).params)
        return dict(trial.params)


def frontier(study: optuna.Study, *, include_continue: bool = False) -> Frontier:
    """The frontier of ``study``: for each budget of its ladder, the best budget-converged value.

    Every trial run by :class:`~budgetopt.BudgetedRun` counts, whatever its state
    (completed, pruned, running, failed: a value reported at a rung was measured), except
    an attempt of a dead worker that was retried (its retry carries its values). The
    ladder is the study's ``budgetopt.ladder`` (written by
    :class:`~budgetopt.BudgetPruner`), else every budget a trial planned or reported.

    Raises ValueError when no trial has a budget-converged value (name the study's modes).
    """
    import optuna

    # Only the attrs read here, in a few SQL queries where Optuna's schema is a known one
    # (budgetopt._optuna.trial_records: 10,000 trials in well under the ORM's 6.7 s);
    # else every trial through Optuna's public API.
    records = trial_records(study, _FRONTIER_ATTRS, ("retry_history", "failed_trial"))
    trials: Sequence[Any] = records if records is not None else study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    read = [t for t in trials if t.number not in retried and ATTR_PLAN in t.user_attrs]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    values: dict[int, list[tuple[int, float]]] = {}
    mid: dict[int, bool] = {}
    params = _LazyParams(study, {t.number: t for t in read}, from_storage=records is not None)
    costs: dict[int, int] = {}
    for t in read:
        got = rung_values_of(t, include_continue)
        if got is None:
            continue
        rung_values, mid_schedule = got
        mid[t.number] = mid_schedule
        cost = _segment_costs(t)
        for budget, value in rung_values.items():
            values.setdefault(budget, []).append((t.number, value))
            costs[budget] = costs.get(budget, 0) + cost.get(budget, 0)
    if not values:
        modes = sorted({str(t.user_attrs.get(ATTR_MODE)) for t in read})
        running = sum(1 for t in read if not t.state.is_finished())
        if not read:
            why = "no trial was run by budgetopt.BudgetedRun"
        elif "continue" in modes and not include_continue:
            why = (f"its trials ran mode {', '.join(modes)}; continue values are mid-schedule (include_continue=True, "
                   "--include-continue on the command line, reads them)")
        else:
            counts = [f"{len(read) - running} diverged or failed before their first rung"] if len(read) > running else []
            counts += [f"{running} still running before their first rung"] if running else []
            why = (f"none of its {len(read)} trials (mode {', '.join(modes)}) reported a finite value at a budget: "
                   + ", ".join(counts))
        raise InputError(f"study {study.study_name!r} has no budget-converged value: {why}")
    ladder = study.user_attrs.get(STUDY_ATTR_LADDER) or {}
    budgets = sorted(set(ladder.get("rungs", ())) | set(values) | {int(b) for t in read for b in t.user_attrs[ATTR_PLAN]})
    rows = _rows(budgets, values, params, mid, costs, maximize)
    return Frontier(
        study=study.study_name,
        direction="maximize" if maximize else "minimize",
        rows=tuple(rows),
        compute=compute_spent(trials),
        trials=len(read),
        include_continue=include_continue,
        _values=values,
    )


def _rows(budgets, values, params, mid, costs, maximize: bool) -> list[FrontierRow]:
    sign = 1.0 if maximize else -1.0
    rows: list[FrontierRow] = []
    previous: float | None = None
    for budget in budgets:
        measured = sorted(values.get(budget, ()), key=lambda nv: (-sign * nv[1], nv[0]))
        if not measured:
            rows.append(FrontierRow(budget, None, {}, None, 0, None, None, costs.get(budget, 0), None))
            continue
        (number, value), runner = measured[0], measured[1] if len(measured) > 1 else None
        rows.append(
            FrontierRow(
                budget=budget,
                trial=number,
                params=params[number],
                value=value,
                measured=len(measured),
                runner_up=None if runner is None else runner[1],
                margin=None if runner is None else sign * (value - runner[1]),
                compute=costs.get(budget, 0),
                gain=None if previous is None else sign * (value - previous),
                mid_schedule=mid[number],
            )
        )
        previous = value
    return rows


# -- what longer training is worth -----------------------------------------------------------


def _power(x, a, b, c):
    import numpy as np

    return a - b * np.power(x, -c)


def _exponential(x, a, b, c):
    import numpy as np

    return a - b * np.exp(-c * x)


FORMS = {"power": _power, "exponential": _exponential}


@dataclass(frozen=True)
class FrontierFit:
    """What training longer is worth, from a fit of the frontier's value against budget.

    ``trusted`` False means ``reason`` says in words why no number is given (too few
    budgets, a frontier that is not rising, a fit that failed); the predictions are then
    None. Otherwise ``predictions`` maps a budget (2x and 4x the largest) to
    ``(value, low, high)``, the 95% interval from a bootstrap over the trials, and
    ``enough_at`` is the first doubling of the largest budget whose next doubling is
    predicted to gain less than ``min_gain`` (None: beyond 64x, or no ``min_gain``).
    ``backtest``: the fit without the largest budget, checked against it (see
    :func:`fit_frontier`); None when there were too few budgets to check.
    ``parameters`` ``(a, b, c)`` are fitted to the value in the study's direction (the
    negated value of a minimize study) against budget / the largest fitted budget.
    """

    form: str
    budgets: tuple[int, ...]
    trusted: bool
    reason: str
    parameters: tuple[float, ...] | None = None
    predictions: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    min_gain: float | None = None
    enough_at: int | None = None
    direction: str = "maximize"
    backtest: tuple[int, float, float, float, float] | None = None  # (budget, predicted, low, high, measured)

    def advice(self) -> str:
        """One sentence: what training twice as long is predicted to gain, or why no number."""
        if not self.trusted:
            return f"no prediction for longer training: {self.reason}."
        top = self.budgets[-1]
        value, low, high = self.predictions[2 * top]
        now = self._at(top)
        word = "gain" if self.direction == "maximize" else "lower the loss by"
        sign = 1 if self.direction == "maximize" else -1
        least, most = sorted((sign * (low - now), sign * (high - now)))  # a loss's interval turns over
        sentence = (
            f"training 2x longer than {top:,} iterations is predicted to {word} {sign * (value - now):.4g} "
            f"({least:.4g} to {most:.4g})"
        )
        if self.min_gain is not None:
            sentence += (
                f"; one more doubling gains less than {self.min_gain:g} from {self.enough_at:,} iterations on"
                if self.enough_at is not None
                else f"; every doubling up to 64x still gains {self.min_gain:g} or more"
            )
        return sentence + "."

    def _at(self, budget: int) -> float:
        """The fitted value at ``budget``, in the study's units."""
        assert self.parameters is not None
        sign = 1.0 if self.direction == "maximize" else -1.0
        return sign * float(FORMS[self.form](budget / self.budgets[-1], *self.parameters))


def _fit(form: str, budgets: Sequence[int], values: Sequence[float], p0: Sequence[float] | None = None):
    import warnings

    import numpy as np
    from scipy.optimize import OptimizeWarning, curve_fit

    x = np.asarray(budgets, float) / budgets[-1]
    y = np.asarray(values, float)
    span = max(float(y.max() - y.min()), 1e-6)
    if p0 is None:
        p0 = (float(y.max()) + 0.1 * span, span, 0.5) if form == "power" else (float(y.max()) + 0.1 * span, 2 * span, 5.0)
    upper_c = 5.0 if form == "power" else 1e3
    bounds = ([-np.inf, 0.0, 1e-3], [np.inf, np.inf, upper_c])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # no covariance from as many points as parameters: not used
        parameters, _ = curve_fit(FORMS[form], x, y, p0=p0, bounds=bounds, maxfev=20_000)
    return tuple(float(p) for p in parameters)


def fit_frontier(
    front: Frontier,
    *,
    budgets: Sequence[int] | None = None,
    min_gain: float | None = None,
    form: str = "power",
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
    at: Sequence[int] = (),
    backtest: bool = True,
) -> FrontierFit:
    """Fit the frontier's value against budget (``budgets``: those to fit on, default every
    budget with a value) and predict 2x and 4x the largest, and every budget of ``at``;
    see :class:`FrontierFit`.

    With ``backtest`` (the default) a fit needs one budget more than the curve's three
    parameters (``studies/frontier_fit.py``: without that check, the intervals held the
    next budget's value in 28% to 93% of the studies, depending on the table; a curve
    through three points cannot be checked), and the study checks the curve on itself
    first: fitted without the largest budget, does its interval hold that
    budget's value? When it does not, the fit is not trusted (the reason says so); when it
    does, every interval is widened by that miss, scaled by how many doublings further the
    prediction reaches (a bootstrap over trials knows nothing of the curve's own error).
    """
    import numpy as np

    if form not in FORMS:
        raise InputError(f"form {form!r}: allowed are {', '.join(FORMS)}")
    if min_gain is not None and not min_gain > 0:
        raise InputError(f"min_gain must be > 0, got {min_gain!r}")
    maximize = front.direction == "maximize"
    sign = 1.0 if maximize else -1.0
    chosen = tuple(sorted(budgets)) if budgets is not None else tuple(r.budget for r in front.rows if r.value is not None)
    measured_at = {r.budget: r.value for r in map(front.row, chosen) if r.value is not None}  # row(): off the ladder raises

    def refuse(reason: str, backtest: tuple[int, float, float, float, float] | None = None) -> FrontierFit:
        return FrontierFit(form, chosen, False, reason, min_gain=min_gain, direction=front.direction, backtest=backtest)

    if len(measured_at) < MIN_FIT_BUDGETS:
        return refuse(f"{len(measured_at)} budget(s) with a value; a fit needs {MIN_FIT_BUDGETS}")
    if backtest and len(measured_at) == MIN_FIT_BUDGETS:  # a curve through every point: nothing checks it
        return refuse(
            f"{MIN_FIT_BUDGETS} budgets with a value: none is left to check the curve on the study itself "
            f"(a prediction needs {MIN_FIT_BUDGETS + 1}: fitted on {MIN_FIT_BUDGETS}, checked on the next)"
        )
    xs = list(measured_at)
    signed = [sign * v for v in measured_at.values()]
    if any(b <= a for a, b in zip(signed, signed[1:])):
        worse = next(budget for budget, a, b in zip(xs[1:], signed, signed[1:]) if b <= a)
        return refuse(f"the frontier is not rising (budget {worse:,} is no better than the one before)")
    try:
        parameters = _fit(form, xs, signed)
    except (RuntimeError, ValueError) as error:
        return refuse(f"the {form} curve does not fit ({error})")
    top = xs[-1]
    targets = sorted({2 * top, 4 * top, *(int(b) for b in at)})
    rng = np.random.default_rng(seed)
    numbers = np.array(sorted({n for b in xs for n, _ in front._values[b]}))
    measured = [
        (np.array([n for n, _ in front._values[b]]), sign * np.array([v for _, v in front._values[b]], dtype=float)) for b in xs
    ]
    drawn = np.zeros(int(numbers.max()) + 1, dtype=bool)
    draws = []
    for _ in range(bootstrap):  # resample the trials: each budget's best among those drawn
        drawn[:] = False
        drawn[rng.choice(numbers, size=len(numbers), replace=True)] = True
        best = [float(vals[drawn[nums]].max()) if drawn[nums].any() else math.nan for nums, vals in measured]
        if any(math.isnan(v) for v in best):
            continue
        try:
            p = _fit(form, xs, best, p0=parameters)
        except (RuntimeError, ValueError):
            continue
        draws.append([float(FORMS[form](t / top, *p)) for t in targets])
    if len(draws) < bootstrap // 2:
        return refuse("the fit fails on most resampled sets of trials")
    checked = None
    if backtest and len(xs) > MIN_FIT_BUDGETS:
        back = fit_frontier(front, budgets=xs[:-1], form=form, bootstrap=bootstrap, seed=seed, at=[top], backtest=False)
        if back.trusted:
            value, low, high = back.predictions[top]
            actual = measured_at[top]
            checked = (top, value, low, high, actual)
            if not low <= actual <= high:
                return refuse(
                    f"fitted without budget {top:,}, the curve predicts {value:.4g} ({low:.4g} to {high:.4g}) there, "
                    f"but the study measured {actual:.4g}: it does not extrapolate on this study",
                    checked,
                )
    draws_array = np.asarray(draws)
    predictions = {}
    for i, t in enumerate(targets):
        value = float(FORMS[form](t / top, *parameters))
        low, high = np.percentile(draws_array[:, i], [2.5, 97.5])
        if checked is not None:  # the curve's own error at one step, scaled to this step's distance in doublings
            miss = abs(checked[1] - checked[4]) * math.log2(t / top) / math.log2(top / xs[-2])
            low, high = low - miss, high + miss
        interval = sorted((sign * float(low), sign * float(high)))
        predictions[t] = (sign * value, interval[0], interval[1])
    enough_at = None
    if min_gain is not None:
        for k in range(0, 7):
            b = top * 2**k
            gain = float(FORMS[form](2 * b / top, *parameters) - FORMS[form](b / top, *parameters))
            if gain < min_gain:
                enough_at = b
                break
    return FrontierFit(
        form, chosen, True, "", parameters, predictions, min_gain, enough_at, front.direction, backtest=checked
    )


def frontier_text(front: Frontier, fit: FrontierFit) -> str:
    """The frontier as a text table, then the advice sentence."""
    lines = [
        f"Frontier of study {front.study!r} ({front.direction}; {front.trials} trials, {front.compute:,} iterations spent): "
        "for each budget, the best value measured there by any trial",
        "",
        f"{'budget':>8}  {'trial':>5}  {'value':>8}  {'margin':>7}  {'measured':>8}  {'compute':>9}  {'gain':>8}  params",
    ]

    def number(x, fmt):
        return "-" if x is None else format(x, fmt)

    for r in front:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items())
        label = "  (mid-schedule)" if r.mid_schedule else ""
        lines.append(
            f"{r.budget:>8,}  {number(r.trial, 'd'):>5}  {number(r.value, '.4f'):>8}  {number(r.margin, '.4f'):>7}  "
            f"{r.measured:>8}  {r.compute:>9,}  {number(r.gain, '+.4f'):>8}  {params}{label}"
        )
    lines += ["", fit.advice()]
    return "\n".join(lines)


def kept_state_dict(
    study: optuna.Study, budget: int, model_store: Any, *, trial: int | None = None
) -> tuple[int, float | None, dict]:
    """``(trial number, its value at budget or None when a trial was named, state_dict)``
    of the annealed model kept for ``budget`` (``BudgetedRun(..., keep_models=k,
    model_store=...)``): the frontier's best trial there, or trial number ``trial``. A
    ValueError names the ladder's budgets, a trial the study lacks, or says that no model
    was kept for that trial; a FileNotFoundError that it is gone."""
    from budgetopt.keep import kept_model_id, read_state_dict

    row = frontier(study).row(budget)
    number = row.trial if trial is None else trial
    if number is None:
        raise InputError(f"no trial measured budget {budget} yet")
    frozen = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if frozen is None:
        raise InputError(f"trial {number}: the study has no such trial")
    artifact_id = kept_model_id(frozen, budget)
    if artifact_id is None:
        raise InputError(
            f"trial {number} kept no model at budget {budget}: models are kept by studies run with "
            "`budgetopt worker/launch --keep-models K` or BudgetedRun(..., keep_models=k, model_store=...)"
        )
    try:
        state = read_state_dict(model_store, artifact_id)
    except FileNotFoundError as error:
        raise MissingPathError(
            f"trial {number}'s model at budget {budget} is gone from the model store ({error}): removed when the trial "
            "fell out of the top k of that budget, or deleted by hand"
        ) from None
    return number, row.value if trial is None else None, state


def load_model(study: optuna.Study, budget: int, model: Any, model_store: Any = None, *, trial: int | None = None) -> int:
    """Load into ``model`` the annealed model kept for ``budget`` (see :func:`kept_state_dict`);
    returns the trial number. ``model_store``: the Optuna artifact store the runs kept
    models in; by default the workers' default, ``FILE.models`` beside the study's
    SQLite or journal file (``budgetopt worker --keep-models``), which must exist."""
    if model_store is None:
        from pathlib import Path

        from budgetopt.storage import default_model_location_of, open_snapshot_store

        location = default_model_location_of(storage_of(study))
        if not Path(location).is_dir():
            raise InputError(
                f"load_model: no model store given and none at {location} (the default beside a SQLite or journal "
                "study): pass model_store=, the artifact store the study's runs kept models in"
            )
        model_store = open_snapshot_store(location, "model")
    number, _, state = kept_state_dict(study, budget, model_store, trial=trial)
    model.load_state_dict(state)
    return number
