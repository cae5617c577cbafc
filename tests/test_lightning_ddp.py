"""BudgetPruningCallback under Lightning's DDP strategy: two CPU processes (gloo) started
by torchrun, each a Trainer with ``strategy="ddp"`` and the callback given an
``optuna_integration.TorchDistributedTrial``. The plan, every rate, the rung values and
the weights are the same on both ranks and equal to one process on the global batch;
pruning and divergence end both ranks at the same step; without a TorchDistributedTrial
the callback refuses in one line on every rank."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
import torch
from torchrun_ranks import require, run_ranks

require(("lightning", "lightning"), ("optuna_integration", "distributed"))

WORKER = Path(__file__).with_name("lightning_ddp_worker.py")
sys.path.insert(0, str(WORKER.parent))
worker = pytest.importorskip("lightning_ddp_worker")

pytestmark = [
    pytest.mark.long,
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated:FutureWarning"),
]


def one_process(mode: str, budgets: list[int]) -> dict:
    """The same plan in one process on batches of 8: the two ranks' batches of 4 together."""
    callback = worker.BudgetPruningCallback(budgets, "val_neg_mse", mode=mode, loss_check_every=2)
    model = worker.LitLinear()
    train, val = worker.loaders(batch_size=8)
    worker.trainer(callback, devices=1, strategy="auto").fit(model, train, val)
    return {"step_lrs": model.step_lrs, "rung_values": callback.run.rung_values, "weights": model.state_dict()}


@pytest.mark.parametrize("mode", ["restart", "branch", "continue"])
def test_both_ranks_train_as_one_process_on_the_global_batch(mode, tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "plain", mode)
    assert zero["outcome"] == one["outcome"] == "complete"
    assert zero["budgets"] == one["budgets"] == [4, 8, 16]  # rank 0's plan, from its study's BudgetPruner
    assert zero["step_lrs"] == one["step_lrs"] and zero["lr_trace"] == one["lr_trace"]
    assert zero["rung_values"] == one["rung_values"]
    for name in zero["weights"]:
        assert torch.equal(zero["weights"][name], one["weights"][name]), name
    alone = one_process(mode, zero["budgets"])
    assert zero["step_lrs"] == alone["step_lrs"]  # every step's rate
    assert list(zero["rung_values"]) == list(alone["rung_values"])
    for budget, value in alone["rung_values"].items():
        assert zero["rung_values"][budget] == pytest.approx(value, rel=1e-4)
    for name, tensor in alone["weights"].items():
        torch.testing.assert_close(zero["weights"][name], tensor, rtol=1e-4, atol=1e-5)
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db").trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and sorted(trial.intermediate_values) == [4, 8, 16]
    assert trial.user_attrs["budgetopt.ended"] == "completed at budget 16"


def test_a_metric_logged_on_rank_0_only_is_the_one_reported_on_both(tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "rank0")
    assert zero["outcome"] == one["outcome"] == "complete"
    assert zero["rung_values"] == one["rung_values"] and list(zero["rung_values"]) == [4, 8, 16]


def test_a_prune_ends_both_ranks_at_the_same_rung(tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "prune")
    assert zero["outcome"] == one["outcome"] == "pruned: pruned at budget 4"
    assert zero["compute"] == one["compute"] == 4 and len(zero["step_lrs"]) == len(one["step_lrs"]) == 4


def test_one_ranks_nan_loss_ends_both_at_the_same_step(tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "diverge")
    # rank 1's loss is NaN from its 5th step (iteration 0 of budget 8); checked every 2 steps
    assert zero["outcome"] == one["outcome"] == "pruned: diverged: training loss is nan by iteration 1 of budget 8"
    assert zero["compute"] == one["compute"] == 4 + 2


def test_without_a_torch_distributed_trial_every_rank_refuses_in_one_line(tmp_path):
    zero, one = run_ranks(WORKER, tmp_path, "ladder")
    assert zero["outcome"] == one["outcome"]
    assert zero["outcome"].startswith("InputError: this Trainer trains on 2 processes: give BudgetPruningCallback "
                                      "optuna_integration.TorchDistributedTrial(trial) on every rank")
    assert "\n" not in zero["outcome"]
