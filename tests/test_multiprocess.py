"""Several worker processes on one study file: nothing lost, every decision consistent."""

import collections
import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from budgetopt.pruners import ATTR_BRACKET, ATTR_DECISIONS

from synthetic import make_study

WORKER = os.path.join(os.path.dirname(__file__), "synthetic.py")


def check_study_is_consistent(study: optuna.Study, n_trials: int) -> None:
    """No lost trial; rung values match decisions; decisions obey the pruner's guarantee."""
    trials = study.get_trials()
    assert len(trials) == n_trials
    assert [t.number for t in trials] == list(range(n_trials))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    eta = study.pruner.ladder.reduction_factor
    counts = collections.Counter(
        (t.user_attrs[ATTR_BRACKET], b) for t in trials for b in t.intermediate_values
    )
    for t in trials:
        plan = t.user_attrs["budgetopt.plan"]
        reached = sorted(t.intermediate_values)
        assert reached == plan[: len(reached)]
        assert t.user_attrs["budgetopt.rung_values"] == {str(b): v for b, v in t.intermediate_values.items()}
        decisions = t.user_attrs.get(ATTR_DECISIONS, {})
        assert sorted(int(b) for b in decisions) == [b for b in reached if b != plan[-1]]
        for budget, (rank, seen, promoted) in decisions.items():
            assert promoted == (rank <= max(1, seen // eta))
            assert 1 <= seen <= counts[(t.user_attrs[ATTR_BRACKET], int(budget))]
        if t.state == TrialState.PRUNED:
            assert decisions[str(reached[-1])][2] is False
        else:
            assert reached[-1] == plan[-1] and all(d[2] for d in decisions.values())


@pytest.mark.long
@pytest.mark.parametrize("backend", ["journal", "sqlite"])
def test_worker_processes_share_one_study(tmp_path, backend):
    if backend == "journal":
        path = str(tmp_path / "study.log")
        url = path
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    else:
        url = storage = f"sqlite:///{tmp_path}/study.db"
    make_study(storage, "shared", brackets="hyperband")  # created once, joined by every worker
    workers = [
        subprocess.Popen([sys.executable, WORKER, url, "shared", "12", "hyperband"], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    check_study_is_consistent(make_study(storage, "shared", brackets="hyperband"), 36)
