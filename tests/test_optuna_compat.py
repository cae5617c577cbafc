"""budgetopt/_optuna.py: every private name of Optuna budgetopt uses, each checked against the
installed Optuna (these fail when Optuna changes them), and no other module uses one."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages.journal import JournalFileBackend

from budgetopt import _optuna

ROOT = Path(__file__).resolve().parents[1] / "budgetopt"
PRIVATE = re.compile(
    r"\._storage\b|\._study_id\b|\._trial_id\b|\boptuna\.(?:[a-z]+\.)*_(?!_version__)|\._file_path\b|\._backend\b"
    r"|_get_trials\b|_raise_error_if_multi_objective|_n_startup_trials|_log_ndtr|_should_check_val_fx|_opt_called"
)
# Known, named uses outside the compat module, each justified where it is:
KNOWN = {
    # BudgetSampler's view of a study implements the private method Optuna's samplers call
    ("samplers.py", "def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False)"),
    ("samplers.py", "return self._get_trials(deepcopy=deepcopy, states=states)"),
    # the Lightning callback: validation only at the rungs (no public hook), restored at teardown
    ("lightning.py", "trainer.fit_loop.epoch_loop._should_check_val_fx = self._should_validate"),
    ("lightning.py", 'trainer.fit_loop.epoch_loop.__dict__.pop("_should_check_val_fx", None)'),
    # several optimizers seen as one: torch's LRScheduler checks this flag on the optimizer it wraps
    ("lightning.py", "_opt_called = True"),
}


def test_no_module_but_the_compat_module_reads_a_private_optuna_name():
    allowed = {"_optuna.py", "distributed.py"}  # distributed.py: optuna_integration's _delegate, named there
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.name in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if PRIVATE.search(code) and not any(path.name == f and known in code for f, known in KNOWN):
                offenders.append(f"{path.relative_to(ROOT.parent)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_ids_storage_and_user_attrs_of_a_sqlite_study(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="s")
    trial = study.ask()
    storage = _optuna.storage_of(study)
    assert isinstance(_optuna.unwrap_cached_storage(storage), optuna.storages.RDBStorage)
    assert _optuna.study_id(study) == optuna.load_study(study_name="s", storage=storage)._study_id
    frozen = study.get_trials(deepcopy=False)[0]
    assert _optuna.trial_id(trial) == _optuna.trial_id(frozen)
    assert storage.get_trial(_optuna.trial_id(frozen)).number == trial.number
    _optuna.set_trial_user_attr(study, frozen, "k", [1, 2])
    assert study.get_trials()[0].user_attrs == {"k": [1, 2]}


def test_the_search_space_transform_maps_params_to_the_unit_cube():
    space = {"lr": FloatDistribution(1e-4, 1.0, log=True), "opt": CategoricalDistribution(["sgd", "adam"])}
    transform = _optuna.search_space_transform(space, transform_0_1=True)
    point = transform.transform({"lr": 1e-2, "opt": "adam"})
    assert point.shape == (3,) and 0 <= point.min() and point.max() <= 1  # lr, and one-hot opt
    assert transform.untransform(point)["opt"] == "adam"


def test_the_file_of_a_journal_storage(tmp_path):
    path = tmp_path / "s.log"
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    assert _optuna.journal_file_path(storage) == str(path)
    assert _optuna.journal_file_path(optuna.storages.InMemoryStorage()) is None


def test_trial_records_read_what_get_trials_reads_on_every_attr_and_value_kind(tmp_path):
    """The frontier's SQL path against Optuna's public one: every state, a retried trial's
    system attrs, JSON attrs of every shape, inf/-inf/NaN intermediate values, another
    study in the same database (not read)."""
    import math

    from optuna.trial import TrialState, create_trial

    url = f"sqlite:///{tmp_path / 'r.db'}"
    other = optuna.create_study(storage=url, study_name="other")
    other.add_trial(create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs={"a": 1}, intermediate_values={1: 2.0}))
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    values = [{1: 0.5, 3: float("inf")}, {1: float("-inf")}, {1: float("nan"), 3: 0.25}, {}]
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING]
    for k, (ivs, state) in enumerate(zip(values, states)):
        study.add_trial(
            create_trial(
                state=state,
                value=0.5 if state == TrialState.COMPLETE else None,
                params={"x": 0.1 * k, "c": "a"},
                distributions={"x": FloatDistribution(0, 1), "c": CategoricalDistribution(["a", "b"])},
                user_attrs={"keep": {"3": 0.5, "k": [k, None, "s"]}, "skip": "x" * 1000},
                system_attrs={"retry_history": [0]} if k == 3 else {"failed_trial": 0} if k == 2 else {},
                intermediate_values=ivs,
            )
        )
    loaded = optuna.load_study(study_name="s", storage=url)
    records = _optuna.trial_records(loaded, ["keep"], ["retry_history", "failed_trial"])
    assert records is not None, f"schema {optuna.storages.RDBStorage(url).get_current_version()} not known"
    trials = loaded.get_trials(deepcopy=False)
    assert [r.number for r in records] == [t.number for t in trials]
    for record, trial in zip(records, trials):
        assert record.state == trial.state and record.trial_id == _optuna.trial_id(trial)
        assert record.user_attrs == {"keep": trial.user_attrs["keep"]}
        assert record.system_attrs == {k: v for k, v in trial.system_attrs.items() if k in ("retry_history", "failed_trial")}
        assert record.intermediate_values.keys() == trial.intermediate_values.keys()
        for step, value in trial.intermediate_values.items():
            got = record.intermediate_values[step]
            assert got == value or (math.isnan(got) and math.isnan(value))
        assert _optuna.storage_of(loaded).get_trial(record.trial_id).params == trial.params
    assert _optuna.trial_records(optuna.create_study(), ["keep"], []) is None  # in memory: the public path
