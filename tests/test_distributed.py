"""BudgetedRun under torch.distributed (two processes, gloo, CPU) with
optuna_integration's TorchDistributedTrial: the plan, rung decisions, pruning and
divergence are the same on both ranks and equal to one process on the global batch; a
rank that dies ends the other with a one-line RankFailure; nothing hangs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from torchrun_ranks import require

import budgetopt
from budgetopt.distributed import owned_trial

from postgres import free_port

require(("optuna_integration", "distributed"))

WORKER = Path(__file__).with_name("distributed_worker.py")
sys.path.insert(0, str(WORKER.parent))
import distributed_worker  # noqa: E402


def run_ranks(tmp_path, scenario: str, mode: str = "restart", timeout: float = 120) -> tuple[list[dict], list[int]]:
    storage = f"sqlite:///{tmp_path}/study.db"
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    port = str(free_port())
    procs = [
        subprocess.Popen([sys.executable, str(WORKER), str(r), "2", port, storage, str(tmp_path), scenario, mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a rank hung past {timeout} s")
        codes.append(p.returncode)
    results = [torch.load(tmp_path / f"rank{r}.pt") if (tmp_path / f"rank{r}.pt").exists() else None for r in range(2)]
    if scenario != "kill":
        assert codes == [0, 0], [p.stderr.read() for p in procs]
    return results, codes


def single_process(mode: str, budgets: list[int]) -> tuple[list[float], dict, dict]:
    model, optimizer = distributed_worker.model_and_optimizer()
    run = budgetopt.BudgetedRun(budgets, model, optimizer, mode=mode)
    x, y = distributed_worker.data()
    for segment in run.segments():
        for _ in segment:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()  # the global batch of 8
            optimizer.step()
        with torch.no_grad():
            segment.report(-float(torch.nn.functional.mse_loss(model(x), y)))
    return run.lr_trace, run.rung_values, model.state_dict()


@pytest.mark.long
@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
def test_both_ranks_train_as_one_process_on_the_global_batch(mode, tmp_path):
    (zero, one), _ = run_ranks(tmp_path, "plain", mode)
    assert zero["outcome"] == one["outcome"] == "complete"
    assert zero["budgets"] == one["budgets"] == [4, 8, 16]  # rank 0's plan, from its study's BudgetPruner
    assert zero["lr_trace"] == one["lr_trace"]
    trace, rung_values, weights = single_process(mode, zero["budgets"])
    assert zero["lr_trace"] == trace
    assert zero["rung_values"] == one["rung_values"]  # rank 0's values on both (rank 1 reported None)
    assert list(zero["rung_values"]) == list(rung_values)
    for name, tensor in weights.items():
        assert torch.equal(zero["weights"][name], one["weights"][name]), name
        torch.testing.assert_close(zero["weights"][name], tensor, rtol=1e-5, atol=1e-6)
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db").trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and sorted(trial.intermediate_values) == [4, 8, 16]
    assert trial.user_attrs["budgetopt.ended"] == "completed at budget 16"


@pytest.mark.long
def test_a_prune_ends_both_ranks_at_the_same_rung(tmp_path):
    (zero, one), _ = run_ranks(tmp_path, "prune")
    assert zero["outcome"] == one["outcome"] == "pruned: pruned at budget 4"
    assert zero["compute"] == one["compute"] == 4


@pytest.mark.long
def test_one_ranks_nan_loss_ends_both_at_the_same_step(tmp_path):
    (zero, one), _ = run_ranks(tmp_path, "diverge")
    assert zero["outcome"] == one["outcome"]
    assert zero["outcome"].startswith("pruned: diverged: training loss is nan by iteration 5 of budget 8")
    assert zero["compute"] == one["compute"] == 4 + 6  # checked every 2 iterations: the check after iteration 5


@pytest.mark.long
def test_a_rank_that_dies_ends_the_other_with_one_line(tmp_path):
    start = time.monotonic()
    (zero, one), codes = run_ranks(tmp_path, "kill", timeout=90)
    assert codes[1] == 3 and one is None
    assert zero["outcome"].startswith("RankFailure: rank 0 of 2: the collective for "), zero["outcome"]
    assert "\n" not in zero["outcome"]
    assert time.monotonic() - start < 90


def test_the_trial_a_torch_distributed_trial_wraps_is_found():
    # budgetopt.distributed.owned_trial reads optuna_integration's private _delegate: this
    # fails when optuna_integration renames it.
    from optuna_integration import TorchDistributedTrial

    study = optuna.create_study()
    trial = study.ask()
    wrapper = TorchDistributedTrial.__new__(TorchDistributedTrial)  # no process group needed to hold one
    wrapper._delegate = trial
    assert owned_trial(wrapper) is trial
    source = Path(importlib.util.find_spec("optuna_integration.pytorch_distributed.pytorch_distributed").origin)
    assert "self._delegate = trial" in source.read_text()
