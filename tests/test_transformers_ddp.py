"""BudgetTrainerCallback under DDP: two CPU processes (gloo) started by torchrun, each a
Hugging Face Trainer with the callback given an ``optuna_integration.TorchDistributedTrial``.
The plan, every step's rate (the mode's schedule), the rung values and the weights are the
same on both ranks; a prune ends both at the same rung; without a TorchDistributedTrial
the callback refuses in one line on every rank."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from torchrun_ranks import require, run_ranks

import budgetopt

require(("transformers", "transformers"), ("optuna_integration", "distributed"))

WORKER = Path(__file__).with_name("transformers_ddp_worker.py")
pytestmark = pytest.mark.long


def plan_rates(mode: str, budgets: list[int]) -> list[float]:
    """The rates a plain BudgetedRun loop gives each step (a throwaway model: rates only)."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=3e-3)
    run = budgetopt.BudgetedRun(budgets, model, optimizer, mode=mode)
    for segment in run.segments():
        for _ in segment:
            optimizer.step()
        segment.report(0.0)
    return run.lr_trace


@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
def test_both_ranks_train_the_plan_alike(mode, tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "plain", mode)
    assert zero["outcome"] == one["outcome"] == "complete"
    assert zero["budgets"] == one["budgets"] == [4, 8, 16]  # rank 0's plan, from its study's BudgetPruner
    assert zero["rates"] == one["rates"] == pytest.approx(plan_rates(mode, [4, 8, 16]), rel=1e-12)
    assert zero["rung_values"] == one["rung_values"] and list(zero["rung_values"]) == [4, 8, 16]
    for name in zero["weights"]:
        assert torch.equal(zero["weights"][name], one["weights"][name]), name
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db").trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and sorted(trial.intermediate_values) == [4, 8, 16]


def test_a_prune_ends_both_ranks_at_the_same_rung(tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "prune")
    assert zero["outcome"] == one["outcome"] == "pruned: pruned at budget 4"
    assert zero["compute"] == one["compute"] == 4 and len(zero["rates"]) == len(one["rates"]) == 4


def test_without_a_torch_distributed_trial_every_rank_refuses_in_one_line(tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "ladder")
    assert zero["outcome"] == one["outcome"]
    assert zero["outcome"].startswith("InputError: this Trainer trains on 2 processes: give BudgetTrainerCallback "
                                      "optuna_integration.TorchDistributedTrial(trial) on every rank")
