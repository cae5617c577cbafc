"""Rung snapshots in an Optuna artifact store: a retried trial resumes at its last rung."""

import os

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

import budgetopt
from budgetopt.attrs import ATTR_RESUMED, ATTR_SNAPSHOT

X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
Y = X.sum(1, keepdim=True)


def make_objective(store, mode, die_in_budget=None, log=None):
    def objective(trial):
        lr = trial.suggest_float("lr", 0.01, 0.1)
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        run = budgetopt.BudgetedRun(
            trial, model, opt, budgets=[4, 12, 36], mode=mode, snapshot_store=store, progress_seconds=0
        )
        for segment in run.segments():
            if log is not None:
                log.append((segment.budget, [p.detach().clone() for p in model.parameters()]))
            for t in segment:
                if segment.budget == die_in_budget and t == segment.budget - 2:
                    raise RuntimeError("worker died")
                loss = torch.nn.functional.mse_loss(model(X), Y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                segment.report(-float(torch.nn.functional.mse_loss(model(X), Y)))
        return run.value

    return objective


# Budgets 4, 12, 36; the failed attempt dies before step t = 34 of budget 36.
# lost: steps of budget 36 it had done (restart from 0, branch's trunk from 6, continue
# from 12); remaining: what the retry executes (branch, cooldown 0.5: trunk 6 -> 18, cooldown 18).
@pytest.mark.parametrize(
    "mode, lost, remaining", [("restart", 34, 36), ("branch", 28, 30), ("continue", 22, 24)]
)
def test_retried_trial_resumes_from_its_last_rung_snapshot(tmp_path, mode, lost, remaining):
    store = FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(make_objective(store, mode, die_in_budget=36), n_trials=1, catch=(RuntimeError,))
    failed = study.trials[0]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[ATTR_SNAPSHOT]["budget"] == 12
    assert len(os.listdir(tmp_path)) == 1  # keep-last: only the newest rung's snapshot

    RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=False)(study, failed)
    log = []
    study.optimize(make_objective(store, mode, log=log), n_trials=1)
    retried = study.trials[1]
    assert retried.state == TrialState.COMPLETE
    assert [budget for budget, _ in log] == [36]  # only the budget that was lost
    assert retried.intermediate_values.keys() == {4, 12, 36}
    assert retried.intermediate_values[4] == failed.intermediate_values[4]
    resumed = retried.user_attrs[ATTR_RESUMED]
    assert resumed["from_trial"] == 0 and resumed["budget"] == 12
    assert resumed["lost_compute"] == lost
    done_before = failed.user_attrs[ATTR_SNAPSHOT]["compute"]
    assert retried.user_attrs["budgetopt.compute"] == done_before + lost + remaining
    assert os.listdir(tmp_path) == []  # the finished trial's snapshot is cleaned up


def test_resumed_restart_run_matches_an_uninterrupted_one(tmp_path):
    store = FileSystemArtifactStore(str(tmp_path))
    plain = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    plain.optimize(make_objective(None, "restart"), n_trials=1)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(make_objective(store, "restart", die_in_budget=36), n_trials=1, catch=(RuntimeError,))
    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    study.optimize(make_objective(store, "restart"), n_trials=1)
    assert study.trials[1].intermediate_values == plain.trials[0].intermediate_values


def test_corrupted_snapshot_trains_from_zero_and_says_why(tmp_path):
    store = FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(make_objective(store, "restart", die_in_budget=36), n_trials=1, catch=(RuntimeError,))
    snapshot = study.trials[0].user_attrs[ATTR_SNAPSHOT]["id"]
    (tmp_path / snapshot).write_bytes(b"not a snapshot")
    RetryHeartbeatStaleTrialCallback()(study, study.trials[0])
    log = []
    study.optimize(make_objective(store, "restart", log=log), n_trials=1)
    assert study.trials[1].state == TrialState.COMPLETE
    assert [budget for budget, _ in log] == [4, 12, 36]
    assert "unusable" in study.trials[1].user_attrs[ATTR_RESUMED]


def test_snapshot_store_needs_a_trial(tmp_path):
    model = torch.nn.Linear(1, 1)
    with pytest.raises(TypeError, match="snapshot_store needs an Optuna trial"):
        store = FileSystemArtifactStore(str(tmp_path))
        budgetopt.BudgetedRun([2, 4], model, torch.optim.SGD(model.parameters(), lr=0.1), snapshot_store=store)
