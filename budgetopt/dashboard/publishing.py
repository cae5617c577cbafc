"""Publishing a study's summary into its storage, where optuna-dashboard shows it.

Storage format (optuna-dashboard 0.21): notes and figures are study system attrs,
split into chunks of 2045 characters (``dashboard:note_str:*``,
``dashboard:plot_data:<id>:*``); a figure is stored as its plotly JSON, so the figures
use a bare template to stay small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from optuna_dashboard import get_note, save_note, save_plotly_graph_object
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from optuna_dashboard._note import note_ver_key, split_body

from budgetopt._optuna import storage_of, study_id, trial_id
from budgetopt.attrs import ATTR_PLAN
from budgetopt.dashboard.figures import GRAPH_COMPARISON, comparison_figure, study_figures
from budgetopt.dashboard.summary import summarize
from budgetopt.dashboard.text import NOTE_TITLE, NOTE_USER_MARKER, note_markdown, trial_note_markdown

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _merge_user_text(old: str, new: str) -> str:
    """``new`` followed by what the user wrote under the marker of ``old`` (or all of
    ``old`` when it is a note that budgetopt did not write)."""
    if NOTE_USER_MARKER in old:
        kept = old.split(NOTE_USER_MARKER, 1)[1]
    elif old.strip() and not old.startswith(NOTE_TITLE):
        kept = "\n\n" + old
    else:
        kept = ""
    return new + kept


def publish(
    study: optuna.Study,
    *,
    comparison: Mapping[str, Iterable] | Iterable[Mapping] | None = None,
    value_name: str = "accuracy",
    trial_notes: bool = False,
) -> dict[str, Any]:
    """Write the study note, the figures and missing trial notes for optuna-dashboard.

    Args:
        study: a study whose trials ran with :class:`~budgetopt.BudgetedRun`.
        comparison: results of a comparison of methods, as :func:`comparison_figure`
            takes them; stored as one more figure. None leaves an earlier one as it is.
        value_name: what the comparison's values are (axis title).
        trial_notes: also write a short note to every finished budgetopt trial that has
            none yet (two writes per trial, once; off by default, as the first call on a
            large study then costs a few milliseconds per trial).

    Returns ``{"note": written?, "figures": [graph ids written], "trial_notes": count}``;
    unchanged content is not written again. Raises ValueError for a study that is not a
    budgetopt study.
    """
    summary = summarize(study)
    storage, study_number = storage_of(study), study_id(study)
    system_attrs = storage.get_study_system_attrs(study_number)
    written: dict[str, Any] = {"note": False, "figures": [], "trial_notes": 0}

    old_note = get_note(study)
    note = _merge_user_text(old_note, note_markdown(summary))
    if note != old_note:
        save_note(study, note)
        written["note"] = True

    figures = study_figures(summary)
    if comparison is not None:
        figures[GRAPH_COMPARISON] = comparison_figure(comparison, value_name)
    written["figures"] = _save_figures(study, figures, system_attrs)

    if trial_notes:
        for trial in study.get_trials(deepcopy=False, states=_FINISHED):
            if ATTR_PLAN in trial.user_attrs and note_ver_key(trial_id(trial)) not in system_attrs:
                _save_new_trial_note(storage, study_number, trial_id(trial), trial_note_markdown(trial))
                written["trial_notes"] += 1
    return written


def publish_comparison(
    study: optuna.Study, results: Mapping[str, Iterable] | Iterable[Mapping], value_name: str = "accuracy"
) -> bool:
    """Store only the accuracy-against-compute figure (:func:`comparison_figure`) in any
    study, e.g. one that holds a comparison's results; True when it was (re)written."""
    figure = comparison_figure(results, value_name)
    return bool(_save_figures(study, {GRAPH_COMPARISON: figure}, storage_of(study).get_study_system_attrs(study_id(study))))


def _save_figures(study: optuna.Study, figures: dict[str, go.Figure], system_attrs: dict) -> list[str]:
    """Save the figures whose JSON differs from the stored one; their graph ids."""
    stored = get_plotly_graph_objects(system_attrs)
    saved = []
    for graph_id, figure in figures.items():
        if stored.get(graph_id) != figure.to_json():
            save_plotly_graph_object(study, figure, graph_object_id=graph_id)
            saved.append(graph_id)
    return saved


def _save_new_trial_note(storage: optuna.storages.BaseStorage, study_id: int, trial_id: int, body: str) -> None:
    """A first note (version 1) for a trial, in optuna-dashboard's storage format.

    ``optuna_dashboard.save_note`` needs a live ``optuna.Trial``, and building one for a
    finished trial runs the sampler's ``before_trial``; this writes the same system
    attrs directly: the body's chunks first, the version last, so a reader never sees
    a version without its body.
    """
    for key, chunk in split_body(body, trial_id).items():
        storage.set_study_system_attr(study_id, key, chunk)
    storage.set_study_system_attr(study_id, note_ver_key(trial_id), 1)
