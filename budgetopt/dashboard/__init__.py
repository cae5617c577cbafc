"""What optuna-dashboard shows of a budgetopt study: a note and plotly figures.

:func:`publish` makes a study self-explaining in optuna-dashboard, with the
dashboard's own ``save_note`` and ``save_plotly_graph_object``::

    study.optimize(objective, n_trials=100)
    budgetopt.dashboard.publish(study)      # then: budgetopt dashboard sqlite:///studies.db

It writes, into the study's storage:

- a **study note**: what kind of search it is (budget-aware, or the baseline: a
  full-length schedule judged mid-schedule), the ladder, brackets, mode(s),
  schedule(s), trials per rung, the compute spent next to what a full-budget search of
  the same trials would have cost, and the best trial with its plan and compute;
- **figures** on the study page: the learning rate of each mode over the ladder, each
  with its own schedule (:func:`mode_schedules`), the rung values of every trial
  against the budget (pruned trials dimmed), the compute per rung, and, when given
  comparison results, accuracy against compute per method (:func:`comparison_figure`; a comparison
  harness can also store that figure alone with :func:`publish_comparison`);
- optionally (``trial_notes=True``), a short **trial note** for every finished trial
  that has none yet: its plan, rung values, decisions, learning-rate and gradient-norm
  summary.

The trial table already shows the ``budgetopt.*`` user attrs that
:class:`~budgetopt.BudgetedRun` and :class:`~budgetopt.BudgetPruner` write.

Safe while workers run: ``publish`` reads the trials once and writes only the
dashboard's study system attrs (notes and figures). It never touches a trial's
values, state, params or user attrs, skips a note or figure whose content has not
changed, and writes a trial note once per trial. Call it on demand or at the end of a
study, not from every trial. The text a user writes in the study note below the
budgetopt summary is kept. Two ``publish`` calls on one study at the same moment may
interleave their chunks of one figure; the next ``publish`` repairs it.

One module per job: :mod:`~budgetopt.dashboard.summary` reads a study (the data),
:mod:`~budgetopt.dashboard.text` says it (the notes, ``budgetopt report``),
:mod:`~budgetopt.dashboard.figures` draws it, :mod:`~budgetopt.dashboard.publishing`
writes notes and figures where optuna-dashboard reads them (its storage format is
described there).
"""

from budgetopt.dashboard.figures import (
    GRAPH_COMPARISON,
    GRAPH_COMPUTE,
    GRAPH_FRONTIER,
    GRAPH_LR_PROFILES,
    GRAPH_RUNG_VALUES,
    comparison_figure,
    compute_figure,
    frontier_figure,
    lr_profile_figure,
    mode_schedule,
    mode_schedules,
    rung_values_figure,
    study_figures,
)
from budgetopt.dashboard.publishing import publish, publish_comparison
from budgetopt.dashboard.summary import StudySummary, TrialRecord, is_budgetopt_study, rung_table, summarize
from budgetopt.dashboard.text import (
    MODE_WORDS,
    NOTE_TITLE,
    NOTE_USER_MARKER,
    note_markdown,
    report_text,
    trial_note_markdown,
)

__all__ = [
    "GRAPH_COMPARISON",
    "GRAPH_COMPUTE",
    "GRAPH_FRONTIER",
    "GRAPH_LR_PROFILES",
    "GRAPH_RUNG_VALUES",
    "MODE_WORDS",
    "NOTE_TITLE",
    "NOTE_USER_MARKER",
    "StudySummary",
    "TrialRecord",
    "comparison_figure",
    "compute_figure",
    "frontier_figure",
    "is_budgetopt_study",
    "lr_profile_figure",
    "mode_schedule",
    "mode_schedules",
    "note_markdown",
    "publish",
    "publish_comparison",
    "report_text",
    "rung_table",
    "rung_values_figure",
    "study_figures",
    "summarize",
    "trial_note_markdown",
]
