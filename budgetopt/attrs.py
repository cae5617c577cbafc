"""Every attr budgetopt writes to or reads from an Optuna study, with its value's shape.

User attrs, because optuna-dashboard shows user attrs (not system attrs). All values
are JSON: budgets are ints, except as keys of a JSON object, where they are strings.

Trial user attrs, written by whom:

============================  ==========================================================  ==============
key                           value                                                       written by
============================  ==========================================================  ==============
``budgetopt.mode``            ``"restart"``, ``"branch"`` or ``"continue"``               BudgetedRun
``budgetopt.plan``            ``[budget, ...]``: the budgets the trial may reach          BudgetedRun
``budgetopt.profile``         the profile's name, e.g. ``"linear"``                       BudgetedRun
``budgetopt.schedule``        ``{"mode", "profile", "params": {name: number},             BudgetedRun
                              "warmup": int, "cooldown": float | null (branch only),
                              "horizon_exponent": float}``: the whole schedule
``budgetopt.rung_values``     ``{"budget": value}``: every budget-converged value so far  BudgetedRun
``budgetopt.compute``         int: iterations executed so far, re-done ones included      BudgetedRun
``budgetopt.ended``           why it ended: ``"completed at budget B"``,                  BudgetedRun,
                              ``"pruned at budget B"``, ``"diverged: ..."``,              BudgetPruner,
                              ``"failed: ..."``                                           workers
``budgetopt.lr_trace``        ``[[iteration, lr], ...]``: the corners (within 0.5% of     BudgetedRun
                              the peak), at most about 200
``budgetopt.grad_norms``      ``[[budget, t, lr, norm], ...]`` (the last 200)             BudgetedRun
``budgetopt.snapshot``        ``{"id", "budget", "compute"}``: the last rung snapshot     BudgetedRun
``budgetopt.resumed``         ``{"from_trial", "budget" | null, "lost_compute"}``, or a   BudgetedRun
                              sentence when the snapshot was unusable
``budgetopt.bracket``         int: the Hyperband bracket                                  BudgetPruner
``budgetopt.decisions``       ``{"budget": [rank, k, promoted]}``                         BudgetPruner
``budgetopt.fit_budget``      int: the budget the sampler's model was fitted on           BudgetSampler
``budgetopt.seed``            int: the seed of the trial's weights and batches            study scripts
``budgetopt.test_value``      float: the test score of the last budget's model            study scripts
``budgetopt.worker``          ``{"host", "pid", "device"}``: who ran the trial            workers
``budgetopt.kept_models``     ``{"budget": artifact id}``: the annealed models kept for    BudgetedRun
                              the budgets where the trial is among the top k (the
                              model may since have been removed: see budgetopt.keep)
``budgetopt.unit``            ``{"config", "seed", "kind"}``: the table unit a trial of   bench build
                              a build study trains
``budgetopt.unit_rows``       str: the unit's rows of ``table.csv``, written once, with   bench worker
                              all its rungs, before the trial completes
============================  ==========================================================  ==============

Study user attrs: ``budgetopt.ladder`` (``{"rungs", "reduction_factor", "brackets":
[{"index", "rungs", "n_trials"}]}``, BudgetPruner) and ``budgetopt.setup`` (``{"script",
"mode"}`` plus the mode's option, e.g. ``"cooldown"``: what every worker of a study
shares). A table built through a storage (:mod:`budgetopt.bench.workers`) records its
build in ``budgetopt.bench_build``: the ``meta.json`` of the table, less what only a
finished table or one machine knows; its queue in ``budgetopt.bench_queue`` (the units
to hand out, as positions in the build's unit order) and ``budgetopt.bench_next`` (how
many of them have been handed out).

Optuna's own system attrs read here: ``retry_history`` (trial numbers retried into this
one) and ``failed_trial`` (the trial a retry copies), written by Optuna's heartbeat
callback. Nothing here imports Optuna.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

ATTR_MODE = "budgetopt.mode"
ATTR_PLAN = "budgetopt.plan"
ATTR_PROFILE = "budgetopt.profile"
ATTR_SCHEDULE = "budgetopt.schedule"
ATTR_RUNG_VALUES = "budgetopt.rung_values"
ATTR_COMPUTE = "budgetopt.compute"
ATTR_ENDED = "budgetopt.ended"
ATTR_LR_TRACE = "budgetopt.lr_trace"
ATTR_GRAD_NORMS = "budgetopt.grad_norms"
ATTR_SNAPSHOT = "budgetopt.snapshot"
ATTR_RESUMED = "budgetopt.resumed"
ATTR_BRACKET = "budgetopt.bracket"
ATTR_DECISIONS = "budgetopt.decisions"
ATTR_FIT_BUDGET = "budgetopt.fit_budget"
ATTR_SEED = "budgetopt.seed"
ATTR_TEST_VALUE = "budgetopt.test_value"
ATTR_WORKER = "budgetopt.worker"
ATTR_KEPT_MODELS = "budgetopt.kept_models"
ATTR_UNIT = "budgetopt.unit"
ATTR_UNIT_ROWS = "budgetopt.unit_rows"

STUDY_ATTR_LADDER = "budgetopt.ladder"
STUDY_ATTR_SETUP = "budgetopt.setup"
STUDY_ATTR_BENCH_BUILD = "budgetopt.bench_build"
STUDY_ATTR_BENCH_QUEUE = "budgetopt.bench_queue"
STUDY_ATTR_BENCH_NEXT = "budgetopt.bench_next"

TRIAL_ATTRS = (
    ATTR_MODE, ATTR_PLAN, ATTR_PROFILE, ATTR_SCHEDULE, ATTR_RUNG_VALUES, ATTR_COMPUTE, ATTR_ENDED, ATTR_LR_TRACE,
    ATTR_GRAD_NORMS, ATTR_SNAPSHOT, ATTR_RESUMED, ATTR_BRACKET, ATTR_DECISIONS, ATTR_FIT_BUDGET, ATTR_SEED,
    ATTR_TEST_VALUE, ATTR_WORKER, ATTR_KEPT_MODELS, ATTR_UNIT, ATTR_UNIT_ROWS,
)
STUDY_ATTRS = (STUDY_ATTR_LADDER, STUDY_ATTR_SETUP, STUDY_ATTR_BENCH_BUILD, STUDY_ATTR_BENCH_QUEUE, STUDY_ATTR_BENCH_NEXT)
TRACE_POINTS = 200  # points of budgetopt.lr_trace (and records of budgetopt.grad_norms) kept


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of the trials that were re-queued: a later trial is their retry."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", ())}


def fresh_trial_count(trials: Sequence[FrozenTrial]) -> int:
    """The study's trials, a retry of a dead worker's trial not counted again."""
    return sum("failed_trial" not in t.system_attrs for t in trials)


def compute_spent(trials: Sequence[FrozenTrial]) -> int:
    """Iterations executed by the study's trials (``budgetopt.compute``), each retried
    trial once: its retry carries the work of the attempts before it."""
    retried = retried_numbers(trials)
    return sum(int(t.user_attrs.get(ATTR_COMPUTE, 0)) for t in trials if t.number not in retried)
