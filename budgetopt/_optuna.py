"""Every private name of Optuna that budgetopt uses, here and nowhere else.

Optuna's public API has no way to do these; each function names what it reads, why
budgetopt needs it, and ``tests/test_optuna_compat.py`` fails when Optuna changes it.
Everything else goes through Optuna's public API (``study.get_trials(deepcopy=False)``,
``trial.study``, ``study.set_user_attr``, ...).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "journal_file_path",
    "search_space_transform",
    "set_trial_user_attr",
    "storage_of",
    "study_id",
    "trial_id",
    "unwrap_cached_storage",
]


def storage_of(study: Any) -> Any:
    """``study._storage``: the storage object of a loaded study. Needed to lock, heartbeat
    and read one trial by id (workers), to write a trial's user attr from a pruner or
    sampler (they get a FrozenTrial), and to save the dashboard's notes and figures
    (optuna-dashboard's own artifact functions take a storage)."""
    return study._storage


def study_id(study: Any) -> int:
    """``study._study_id``: the storage's id of a study (storage methods take ids, the
    dashboard's URLs name it)."""
    return int(study._study_id)


def trial_id(trial: Any) -> int:
    """``trial._trial_id`` of a ``Trial`` or ``FrozenTrial``: the storage's id, which the
    storage methods take (a trial's number is per study, its id is the storage's key)."""
    return int(trial._trial_id)


def set_trial_user_attr(study: Any, trial: Any, key: str, value: Any) -> None:
    """Set a user attr of ``trial`` (a ``FrozenTrial``, as pruners and samplers get) through
    its study's storage: Optuna's public ``Trial.set_user_attr`` needs a live ``Trial``."""
    storage_of(study).set_trial_user_attr(trial_id(trial), key, value)


def search_space_transform(search_space: dict, **options: Any) -> Any:
    """``optuna._transform._SearchSpaceTransform``: the transform of params to Optuna's
    numerical representation that its own samplers use; budgetopt's pool search and
    promotion measure distances between configurations in it, as TPE sees them."""
    from optuna._transform import _SearchSpaceTransform

    return _SearchSpaceTransform(search_space, **options)


def unwrap_cached_storage(storage: Any) -> Any:
    """The RDB storage under Optuna's ``_CachedStorage`` wrapper (``optuna.load_study`` on an
    RDB URL returns one); the heartbeat and lock functions need the RDB storage itself."""
    return getattr(storage, "_backend", storage) if type(storage).__name__ == "_CachedStorage" else storage


def journal_file_path(storage: Any) -> str | None:
    """The file of a ``JournalStorage`` on a ``JournalFileBackend`` (``_backend._file_path``;
    no public accessor in Optuna 5), to put snapshots and models beside it; None for
    another storage."""
    backend = getattr(storage, "_backend", None)
    path = getattr(backend, "_file_path", None)
    return None if path is None else str(path)
