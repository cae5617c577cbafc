"""What a :class:`~budgetopt.BudgetedRun` reads from and writes to its Optuna trial.

- the trial's plan, from the study's :class:`~budgetopt.BudgetPruner` (:func:`plan_of`);
- its user attrs (:mod:`budgetopt.attrs`): the plan and schedule when it starts
  (:func:`trial_attrs_for_plan`), the rung values and compute at each rung
  (:func:`trial_attrs_for_rung`), its compute as it goes (so that the retry of a dead
  worker's trial knows the work lost), and why it ended with its learning-rate trace;
- rung snapshots in an Optuna artifact store, from which a retried trial resumes
  (:class:`TrialIO`): what a snapshot holds is the run's (its mode says), how it is
  stored, recorded, removed and read back is here.

The benchmark simulator writes the same plan and rung attrs for its replayed trials.
"""

from __future__ import annotations

import io
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from budgetopt._optuna import storage_of, trial_id
from budgetopt.attrs import (
    ATTR_COMPUTE,
    ATTR_ENDED,
    ATTR_GRAD_NORMS,
    ATTR_LR_TRACE,
    ATTR_MODE,
    ATTR_PLAN,
    ATTR_PROFILE,
    ATTR_RESUMED,
    ATTR_RUNG_VALUES,
    ATTR_SCHEDULE,
    ATTR_SNAPSHOT,
    TRACE_POINTS,
)
from budgetopt.errors import InputError
from budgetopt.modes import MODE_TYPES, get_mode

if TYPE_CHECKING:
    import optuna


def trial_attrs_for_plan(mode: str, budgets: Sequence[int], profile: str | Mapping[str, Any]) -> dict:
    """The user attrs a budget-aware trial records when it starts: its mode, plan and
    schedule (what :class:`~budgetopt.BudgetSampler` and the dashboard read).

    ``profile`` is the schedule (a :meth:`~budgetopt.modes.Mode.schedule` dict) or a
    profile's name, for a schedule with the mode's defaults otherwise.
    """
    schedule = dict(profile) if isinstance(profile, Mapping) else get_mode(mode).schedule(profile)
    return {ATTR_MODE: mode, ATTR_PLAN: list(budgets), ATTR_PROFILE: schedule["profile"], ATTR_SCHEDULE: schedule}


def trial_attrs_for_rung(rung_values: dict[int, float], compute: int) -> dict:
    """The user attrs a trial records at each rung: every budget-converged value so far
    and the compute spent."""
    return {ATTR_RUNG_VALUES: {str(b): v for b, v in rung_values.items()}, ATTR_COMPUTE: compute}


def trace_summary(trace: Sequence[float], points: int = TRACE_POINTS, tolerance: float = 0.005) -> list[list[float]]:
    """The corners of ``trace`` as ``[iteration, lr]`` pairs: the fewest points whose
    straight lines stay within ``tolerance`` x the peak rate of every step (Ramer-Douglas-
    Peucker), the rates to 4 significant digits, at most about ``points`` of them. A linear
    schedule is a few points per budget (the dashboard's attribute table stays readable);
    each rise back up (a restart, a branch's trunk) is a corner, so it is kept."""
    n = len(trace)
    if n == 0:
        return []
    y = np.asarray(trace, dtype=float)
    peak = float(np.max(np.abs(y[np.isfinite(y)]), initial=0.0)) or 1.0
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    spans = [(0, n - 1)]
    while spans:
        a, b = spans.pop()
        if b - a < 2:
            continue
        inner = np.arange(a + 1, b)
        line = y[a] + (y[b] - y[a]) * (inner - a) / (b - a)
        error = np.abs(y[inner] - line)
        error[~np.isfinite(error)] = np.inf
        worst = int(np.argmax(error))
        if error[worst] > tolerance * peak:
            keep[inner[worst]] = True
            spans += [(a, int(inner[worst])), (int(inner[worst]), b)]
    kept = np.flatnonzero(keep)
    if len(kept) > points:  # a long curved schedule: evenly thinned, the ends kept
        kept = np.unique(np.r_[kept[:: math.ceil(len(kept) / points)], kept[-1]])
    return [[int(i), float(f"{y[i]:.4g}")] for i in kept]


def rung_values_of(trial: optuna.trial.FrozenTrial, include_continue: bool = False) -> tuple[dict[int, float], bool] | None:
    """A BudgetedRun trial's finite rung values (``budgetopt.rung_values``, else its
    intermediate values) and whether they are mid-schedule (a ``continue`` trial); None
    for a trial of no budgetopt mode, or a ``continue`` one unless ``include_continue``."""
    mode_type = MODE_TYPES.get(trial.user_attrs.get(ATTR_MODE) or "")
    if mode_type is None or (not mode_type.budget_aware and not include_continue):
        return None
    source = trial.user_attrs.get(ATTR_RUNG_VALUES) or trial.intermediate_values
    values = {int(b): float(v) for b, v in source.items()}
    return {b: v for b, v in values.items() if math.isfinite(v)}, not mode_type.budget_aware


def plan_of(trial: optuna.trial.Trial) -> tuple[int, ...]:
    """The budgets the study's BudgetPruner lets this trial reach."""
    study = trial.study
    if len(study.directions) > 1:
        raise InputError(
            "BudgetedRun does not support multi-objective studies: Optuna's trial.report is single-objective"
        )
    plan = getattr(study.pruner, "plan", None)
    if plan is None:
        raise InputError(
            f"the trial's study has no BudgetPruner (its pruner is {type(study.pruner).__name__}) "
            "and no budgets were given: pass budgets=[...] or use budgetopt.BudgetPruner"
        )
    return tuple(plan(study, trial))


class TrialIO:
    """One run's trial: its user attrs and its rung snapshots in ``snapshot_store``.

    At most one snapshot per trial is kept (two while one is written): a new one is
    recorded in the trial's user attrs before the previous one is removed, so a crash at
    any point leaves one readable snapshot.
    """

    def __init__(self, trial: optuna.trial.Trial, snapshot_store: Any = None, progress_seconds: float = 30.0) -> None:
        self.trial = trial
        self.snapshot_store = snapshot_store
        self.progress_seconds = progress_seconds
        self.snapshot_id: str | None = None
        self._progress_at = time.monotonic()

    def set(self, attrs: Mapping[str, Any]) -> None:
        for key, value in attrs.items():
            self.trial.set_user_attr(key, value)

    # -- the start ----------------------------------------------------------------------

    def start(self, mode: str, budgets: Sequence[int], schedule: Mapping[str, Any]) -> tuple[dict | None, int]:
        """Record the plan and schedule. Returns the record of the snapshot a failed
        attempt of this trial left (``budgetopt.snapshot``) when there is one to resume
        from (else None), and the compute to start from: a retry with no snapshot trains
        from zero, and the work its failed attempt lost still counts."""
        # a retry of a failed attempt (Optuna's RetryFailedTrialCallback copies its attrs),
        # even one interrupted before it recorded its plan
        retry = ATTR_PLAN in self.trial.user_attrs or "failed_trial" in self._frozen().system_attrs
        self.set(trial_attrs_for_plan(mode, budgets, schedule))
        if self.snapshot_store is not None and ATTR_SNAPSHOT in self.trial.user_attrs:
            return self.trial.user_attrs[ATTR_SNAPSHOT], 0
        return None, self.count_lost_work(None, 0) if retry else 0

    def read_snapshot(self, record: Mapping[str, Any]) -> dict:
        """The state saved in the snapshot of ``record`` (raises when it is unreadable)."""
        assert self.snapshot_store is not None
        with self.snapshot_store.open_reader(record["id"]) as reader:
            return torch.load(io.BytesIO(reader.read()), map_location="cpu", weights_only=True)

    def resume_failed(self, record: Mapping[str, Any], error: BaseException) -> int:
        """The snapshot of ``record`` could not be used: say why; the compute to start
        from (the lost attempts' work still counts)."""
        compute = int(self.trial.user_attrs.get(ATTR_COMPUTE, record["compute"]))
        reason = f"snapshot {record['id']} unusable ({type(error).__name__}: {error}); trained from zero"
        self.set({ATTR_RESUMED: reason, ATTR_COMPUTE: compute})
        return compute

    def resumed(self, record: Mapping[str, Any], rung_values: Mapping[int, float], budget: int, saved_compute: int) -> int:
        """The run resumed from the snapshot of ``record``, taken at ``budget``: report the
        rung values the trial's storage lacks, record the resume; the compute to start from."""
        self.snapshot_id = record["id"]
        frozen = self._frozen()
        for b, value in rung_values.items():
            if b not in frozen.intermediate_values:
                self.trial.report(value, step=b)
        return self.count_lost_work(budget, saved_compute)

    def count_lost_work(self, budget: int | None, saved_compute: int) -> int:
        """A retry's compute at its start: ``saved_compute`` (kept in the snapshot of
        ``budget``; None: no snapshot) plus the work done after it and lost with the
        worker, known from the attempt's last progress record."""
        lost = max(0, int(self.trial.user_attrs.get(ATTR_COMPUTE, saved_compute)) - saved_compute)
        compute = saved_compute + lost
        failed_trial = self._frozen().system_attrs.get("failed_trial")
        self.set({ATTR_RESUMED: {"from_trial": failed_trial, "budget": budget, "lost_compute": lost}, ATTR_COMPUTE: compute})
        return compute

    # -- while training -----------------------------------------------------------------

    def progress(self, compute: int) -> None:
        """Every ``progress_seconds``, the compute so far: if this worker dies, the retry
        knows the work it lost."""
        if time.monotonic() - self._progress_at > self.progress_seconds:
            self._progress_at = time.monotonic()
            self.set({ATTR_COMPUTE: compute})

    def rung(self, rung_values: dict[int, float], compute: int) -> None:
        self.set(trial_attrs_for_rung(rung_values, compute))

    def save_snapshot(self, state: dict, budget: int, compute: int) -> None:
        """After a promoted rung: ``state``, what a retry needs to resume at the next budget."""
        if self.snapshot_store is None:
            return
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        snapshot_id = f"budgetopt-{uuid.uuid4()}"
        self.snapshot_store.write(snapshot_id, buffer)
        self.set({ATTR_SNAPSHOT: {"id": snapshot_id, "budget": budget, "compute": compute}})
        self.remove_snapshot()
        self.snapshot_id = snapshot_id

    def remove_snapshot(self) -> None:
        if self.snapshot_id is not None and self.snapshot_store is not None:
            try:
                self.snapshot_store.remove(self.snapshot_id)
            except Exception:  # already gone (removed by hand, or a store that lost it): nothing to free
                pass
            self.snapshot_id = None

    def ended(self, reason: str, lr_trace: Sequence[float], grad_norms: Sequence[tuple]) -> None:
        """The run ended (completed, pruned or diverged): its snapshot goes, its reason and
        traces are recorded."""
        self.remove_snapshot()
        attrs: dict[str, Any] = {ATTR_ENDED: reason, ATTR_LR_TRACE: trace_summary(lr_trace)}
        if grad_norms:
            attrs[ATTR_GRAD_NORMS] = [list(g) for g in grad_norms[-TRACE_POINTS:]]
        self.set(attrs)

    def _frozen(self) -> optuna.trial.FrozenTrial:
        return storage_of(self.trial.study).get_trial(trial_id(self.trial))
