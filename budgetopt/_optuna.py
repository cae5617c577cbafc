"""Every private name of Optuna that budgetopt uses, here and nowhere else.

Optuna's public API has no way to do these; each function names what it reads, why
budgetopt needs it, and ``tests/test_optuna_compat.py`` fails when Optuna changes it.
Everything else goes through Optuna's public API (``study.get_trials(deepcopy=False)``,
``trial.study``, ``study.set_user_attr``, ...).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "cached_trials",
    "fast_tpe_patch",
    "journal_file_path",
    "search_space_transform",
    "set_trial_user_attr",
    "startup_trials",
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


def cached_trials(study: Any) -> list:
    """``study._get_trials(deepcopy=False, use_cache=True)``: the trials as Optuna's own
    samplers read them inside ``sample_relative`` (the cached view, no storage round
    trip per suggestion); BudgetSampler reads them there to build its base sampler's view."""
    return study._get_trials(deepcopy=False, use_cache=True)


def startup_trials(sampler: Any) -> int:
    """A sampler's ``_n_startup_trials`` (TPE's and GP's random start), 0 when it has none:
    BudgetSampler fits its base sampler only on a budget with at least that many values."""
    return int(getattr(sampler, "_n_startup_trials", 0))


def fast_tpe_patch() -> Any:
    """Replace ``optuna.samplers._tpe._truncnorm._log_ndtr`` (a pure-Python scalar loop) with
    scipy's ``special.log_ndtr`` (they agree to 3e-13 over [-40, 40], three times faster
    for a whole search); returns a function that puts Optuna's back. A process-wide
    replacement of a private function, used only by the simulator's processes (its speed
    target) for the duration of a simulation; nothing else in budgetopt patches a library."""
    import numpy as np
    import optuna.samplers._tpe._truncnorm as truncnorm
    from scipy.special import log_ndtr

    original = truncnorm._log_ndtr
    truncnorm._log_ndtr = lambda a: log_ndtr(np.asarray(a, dtype=float))
    return lambda: setattr(truncnorm, "_log_ndtr", original)
