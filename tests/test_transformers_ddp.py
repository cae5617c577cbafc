"""BudgetTrainerCallback under DDP: two CPU processes (gloo) started by torchrun, each a
Hugging Face Trainer with the callback given an ``optuna_integration.TorchDistributedTrial``.
The plan, every step's rate (the mode's schedule), the rung values and the weights are the
same on both ranks; a prune ends both at the same rung; without a TorchDistributedTrial
the callback refuses in one line on every rank."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

import budgetopt

from conftest import IN_CI


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # imported already, by a module that left no spec (optuna_integration's lazy import)
        return module in sys.modules


for module, extra in (("transformers", "transformers"), ("optuna_integration", "distributed")):
    if not installed(module):
        if IN_CI:
            raise ImportError(f"required in CI: {module} (pip install 'budgetopt[{extra}]')")
        pytest.skip(f"{module} is not installed (pip install 'budgetopt[{extra}]')", allow_module_level=True)
if int(optuna.__version__.split(".")[0]) < 5:  # tox -e optuna-lowest: budgetopt's distributed extra needs Optuna 5
    pytest.skip(f"optuna {optuna.__version__}: TorchDistributedTrial needs optuna>=5.0", allow_module_level=True)

WORKER = Path(__file__).with_name("transformers_ddp_worker.py")
pytestmark = pytest.mark.long


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path: Path, scenario: str, mode: str = "restart") -> tuple[dict, dict]:
    storage = f"sqlite:///{tmp_path}/study.db"
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
               "--max-restarts", "0", str(WORKER), storage, str(tmp_path), scenario, mode]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")


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
    zero, one = run_ranks(tmp_path, "plain", mode)
    assert zero["outcome"] == one["outcome"] == "complete"
    assert zero["budgets"] == one["budgets"] == [4, 8, 16]  # rank 0's plan, from its study's BudgetPruner
    assert zero["rates"] == one["rates"] == pytest.approx(plan_rates(mode, [4, 8, 16]), rel=1e-12)
    assert zero["rung_values"] == one["rung_values"] and list(zero["rung_values"]) == [4, 8, 16]
    for name in zero["weights"]:
        assert torch.equal(zero["weights"][name], one["weights"][name]), name
    trial = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/study.db").trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and sorted(trial.intermediate_values) == [4, 8, 16]


def test_a_prune_ends_both_ranks_at_the_same_rung(tmp_path):
    zero, one = run_ranks(tmp_path, "prune")
    assert zero["outcome"] == one["outcome"] == "pruned: pruned at budget 4"
    assert zero["compute"] == one["compute"] == 4 and len(zero["rates"]) == len(one["rates"]) == 4


def test_without_a_torch_distributed_trial_every_rank_refuses_in_one_line(tmp_path):
    zero, one = run_ranks(tmp_path, "ladder")
    assert zero["outcome"] == one["outcome"]
    assert zero["outcome"].startswith("InputError: this Trainer trains on 2 processes: give BudgetTrainerCallback "
                                      "optuna_integration.TorchDistributedTrial(trial) on every rank")
