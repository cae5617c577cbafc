"""Kept models: the annealed model of every rung, for the top-k trials of each budget.

A budget-converged rung value belongs to a model worth having: restart's at the end of
that budget, branch's at the end of its cooldown (before the trunk is restored). With
``BudgetedRun(..., keep_models=k, model_store=store)`` a trial that reports a value among
the ``k`` best measured at that budget so far writes its model's ``state_dict`` to
``store`` (an Optuna artifact store: ``FileSystemArtifactStore`` on one machine, Optuna's
S3 or GCS stores for many) and names it in its user attr ``budgetopt.kept_models``
(``{"budget": artifact id}``); then it removes the models of trials that have left the top
``k`` of that budget. :func:`load_model` loads the model of a frontier row.

Safe with many workers: a trial's value at a budget never changes once reported, so a
trial that ``k`` others beat at a budget never returns to its top ``k``; removing its
model is never wrong, whichever worker does it and however stale its view of the study.
A model is named in the trial's user attr *before* it is written, so a worker killed in
between leaves a name without a file (:func:`load_model` says so), never a file nobody
names. A stale view can leave a model that has just left the top ``k``; the next report at
that budget, or :func:`sweep`, removes it. A retried trial (its worker died) is ranked by its
retry, which carries its values and the names of its models; a model the dead attempt named
and its retry replaced is removed like any other outside the top ``k``.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from budgetopt._messages import typed_line
from budgetopt.attrs import ATTR_KEPT_MODELS, retried_numbers
from budgetopt.errors import InputError, InputTypeError, MissingPathError, ResourceError
from budgetopt.trial_io import rung_values_of

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = ["ModelKeeper", "kept_model_id", "sweep"]

def _value_at(trial: FrozenTrial, budget: int) -> float | None:
    got = rung_values_of(trial)  # budget-aware modes only: their rung models are annealed
    return None if got is None else got[0].get(budget)


def top_trials(
    trials: Sequence[FrozenTrial], budget: int, k: int, maximize: bool, extra: tuple[int, float] | None = None
) -> set[int]:
    """Numbers of the ``k`` best trials at ``budget`` (ties: the earlier trial first);
    ``extra``: a ``(number, value)`` not yet visible in ``trials``."""
    retried = retried_numbers(trials)  # a dead worker's attempt: its retry carries its values and models
    measured = {t.number: v for t in trials if t.number not in retried and (v := _value_at(t, budget)) is not None}
    if extra is not None:
        measured[extra[0]] = extra[1]
    ranked = sorted(measured.items(), key=lambda nv: ((-nv[1] if maximize else nv[1]), nv[0]))
    return {number for number, _ in ranked[:k]}


def _remove(store: Any, artifact_id: str) -> None:
    try:
        store.remove(artifact_id)
    except Exception:  # already removed (by another worker, or by hand): nothing to free
        pass


def _evict(trials: Sequence[FrozenTrial], budget: int, store: Any, keep: set[int]) -> None:
    for t in trials:
        artifact_id = (t.user_attrs.get(ATTR_KEPT_MODELS) or {}).get(str(budget))
        if artifact_id is not None and t.number not in keep:
            _remove(store, artifact_id)


def _maximize(study: optuna.Study) -> bool:
    import optuna

    return study.direction == optuna.study.StudyDirection.MAXIMIZE


class ModelKeeper:
    """Keeps one trial's rung models while they are among the ``k`` best of their budget."""

    def __init__(self, trial: optuna.trial.Trial, store: Any, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"keep_models must be an integer >= 1, got {k!r}")
        for method in ("write", "remove", "open_reader"):
            if not callable(getattr(store, method, None)):
                raise InputTypeError(f"model_store must be an Optuna artifact store (write, open_reader, remove), got {store!r}")
        self.trial = trial
        self.store = store
        self.k = k
        self.kept: dict[str, str] = dict(trial.user_attrs.get(ATTR_KEPT_MODELS) or {})

    def rung(self, budget: int, value: float, model: torch.nn.Module) -> bool:
        """After ``value`` was reported at ``budget``: keep ``model`` if it is among the top
        ``k`` there, and remove the models that left it. True when kept."""
        study = self.trial.study
        trials = study.get_trials(deepcopy=False)
        keep = top_trials(trials, budget, self.k, _maximize(study), extra=(self.trial.number, value))
        if self.trial.number not in keep:
            return False
        artifact_id = f"budgetopt-model-{uuid.uuid4()}"
        self.kept[str(budget)] = artifact_id
        self.trial.set_user_attr(ATTR_KEPT_MODELS, dict(self.kept))  # named before written: no file without a name
        buffer = io.BytesIO()
        torch.save({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, buffer)
        buffer.seek(0)
        self.store.write(artifact_id, buffer)
        _evict(trials, budget, self.store, keep)
        return True


def sweep(study: optuna.Study, store: Any, k: int) -> int:
    """Remove every kept model outside the top ``k`` of its budget (the leftovers of stale
    views, at the end of a study); returns how many trials' models were examined."""
    trials = study.get_trials(deepcopy=False)
    budgets = {int(b) for t in trials for b in (t.user_attrs.get(ATTR_KEPT_MODELS) or {})}
    for budget in budgets:
        _evict(trials, budget, store, top_trials(trials, budget, k, _maximize(study)))
    return len(budgets)


def kept_model_id(trial: FrozenTrial, budget: int) -> str | None:
    """The artifact id of ``trial``'s kept model at ``budget`` (None: none was kept)."""
    return (trial.user_attrs.get(ATTR_KEPT_MODELS) or {}).get(str(budget))


def read_state_dict(store: Any, artifact_id: str) -> dict:
    """The ``state_dict`` a :class:`ModelKeeper` wrote; a FileNotFoundError when it is gone, a
    :class:`~budgetopt.errors.ResourceError` when the store cannot be read."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    try:
        with store.open_reader(artifact_id) as reader:
            data = reader.read()
    except (ArtifactNotFound, FileNotFoundError) as error:
        raise MissingPathError(f"kept model {artifact_id} is not in the model store ({type(error).__name__})") from None
    except Exception as error:  # the store itself failed: a network, credentials, a disk
        raise ResourceError(f"kept model {artifact_id} could not be read from the model store: {typed_line(error)}") from error
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
