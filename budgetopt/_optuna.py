"""Every private name of Optuna that budgetopt uses, here and nowhere else.

Optuna's public API has no way to do these; each function names what it reads, why
budgetopt needs it, and ``tests/test_optuna_compat.py`` fails when Optuna changes it.
Everything else goes through Optuna's public API (``study.get_trials(deepcopy=False)``,
``trial.study``, ``study.set_user_attr``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

__all__ = [
    "KNOWN_RDB_SCHEMAS",
    "TrialRecord",
    "cached_trials",
    "fast_tpe_patch",
    "journal_file_path",
    "search_space_transform",
    "set_trial_user_attr",
    "startup_trials",
    "storage_of",
    "study_id",
    "trial_id",
    "trial_records",
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
    for a whole search); returns a function that puts Optuna's back. A replacement of a
    private function for the whole process, so it is made only in the simulator's own
    worker processes (``budgetopt.bench.runner``), which run nothing but simulated
    searches: never in a user's process, where a simulation run with ``jobs=1`` uses
    Optuna's TPE as it is. Nothing else in budgetopt patches a library."""
    import numpy as np
    import optuna.samplers._tpe._truncnorm as truncnorm
    from scipy.special import log_ndtr

    original = truncnorm._log_ndtr
    truncnorm._log_ndtr = lambda a: log_ndtr(np.asarray(a, dtype=float))
    return lambda: setattr(truncnorm, "_log_ndtr", original)


# Optuna's RDB schema versions (alembic revisions) whose tables trial_records reads.
KNOWN_RDB_SCHEMAS = ("v3.2.0.a",)
_VALUE_TYPES = {"FINITE": None, "INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


@dataclasses.dataclass
class TrialRecord:
    """What :func:`trial_records` reads of one trial: the attributes budgetopt's readers
    of a whole study use, under a ``FrozenTrial``'s names (``params`` left empty: read
    the few trials whose params are shown with ``storage.get_trial(trial_id)``)."""

    number: int
    trial_id: int
    state: Any
    user_attrs: dict
    system_attrs: dict
    intermediate_values: dict
    params: dict = dataclasses.field(default_factory=dict)


def trial_records(study: Any, user_keys: Sequence[str], system_keys: Sequence[str]) -> list[TrialRecord] | None:
    """Every trial of ``study`` with only the user and system attrs named, read with four
    SQL queries on Optuna's RDB tables (``trials``, ``trial_user_attributes``,
    ``trial_system_attributes``, ``trial_intermediate_values``); None when the study is
    not in an RDB storage or its schema is not one of :data:`KNOWN_RDB_SCHEMAS`, and the
    caller reads ``study.get_trials`` instead.

    Why: a study's frontier reads a few small attrs of every trial; Optuna's public
    ``get_trials`` builds every trial with all its attrs through its ORM, 6.7 s at 10,000
    trials in SQLite (``studies/bench_frontier.py``) where these queries take a small
    part of it. Read-only; ``tests/test_optuna_compat.py`` checks that it reads exactly
    what ``get_trials`` reads, on every attr a budgetopt trial has.
    """
    import json

    import optuna
    import sqlalchemy

    storage = unwrap_cached_storage(storage_of(study))
    if not isinstance(storage, optuna.storages.RDBStorage):
        return None
    try:
        if storage.get_current_version() not in KNOWN_RDB_SCHEMAS:
            return None
    except Exception:  # a storage that cannot say: the public path
        return None
    sid = study_id(study)
    by_id: dict[int, TrialRecord] = {}
    with storage.engine.connect() as connection:
        def rows(sql: str, **params: Any) -> Any:
            return connection.execute(sqlalchemy.text(sql), {"sid": sid, **params})

        for tid, number, state in rows("SELECT trial_id, number, state FROM trials WHERE study_id = :sid ORDER BY number"):
            by_id[tid] = TrialRecord(number, tid, optuna.trial.TrialState[state], {}, {}, {})
        for table, field, keys in (("trial_user_attributes", "user_attrs", user_keys),
                                   ("trial_system_attributes", "system_attrs", system_keys)):
            if not keys:
                continue
            selected = connection.execute(
                sqlalchemy.text(
                    f"SELECT a.trial_id, a.key, a.value_json FROM {table} a JOIN trials t ON a.trial_id = t.trial_id "
                    "WHERE t.study_id = :sid AND a.key IN :keys"
                ).bindparams(sqlalchemy.bindparam("keys", expanding=True)),
                {"sid": sid, "keys": list(keys)},
            )
            for tid, key, value in selected:
                if tid in by_id:
                    getattr(by_id[tid], field)[key] = json.loads(value)
        for tid, step, value, kind in rows(
            "SELECT v.trial_id, v.step, v.intermediate_value, v.intermediate_value_type FROM trial_intermediate_values v "
            "JOIN trials t ON v.trial_id = t.trial_id WHERE t.study_id = :sid"
        ):
            if tid in by_id:
                by_id[tid].intermediate_values[int(step)] = float(value) if _VALUE_TYPES[kind] is None else _VALUE_TYPES[kind]
    return sorted(by_id.values(), key=lambda r: r.number)
