"""Two ranks of one trial under torchrun (gloo, CPU), for the DDP tests of the Lightning and
Hugging Face Trainer callbacks: what the tests share (``require``, ``run_ranks``) and what
their rank scripts share (``start_rank``, ``finish_rank``)."""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import torch.distributed as dist

from postgres import free_port


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # imported already, by a module that left no spec (optuna_integration's lazy import)
        return module in sys.modules


def require(*modules: tuple[str, str]) -> None:
    """Skip the calling test module (fail it under CI) unless each ``(module, extra)`` is
    installed and Optuna is 5 or later (budgetopt's distributed extra needs it)."""
    from conftest import IN_CI

    for module, extra in modules:
        if not installed(module):
            if IN_CI:
                raise ImportError(f"required in CI: {module} (pip install 'budgetopt[{extra}]')")
            pytest.skip(f"{module} is not installed (pip install 'budgetopt[{extra}]')", allow_module_level=True)
    if int(optuna.__version__.split(".")[0]) < 5:  # tox -e optuna-lowest
        pytest.skip(f"optuna {optuna.__version__}: TorchDistributedTrial needs optuna>=5.0", allow_module_level=True)


def run_ranks(worker: Path, tmp_path: Path, scenario: str, mode: str = "restart") -> tuple[dict, dict]:
    """Both ranks of ``worker`` (STORAGE OUT SCENARIO MODE) under torchrun; what each saved."""
    storage = f"sqlite:///{tmp_path}/study.db"
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
               "--max-restarts", "0", str(worker), storage, str(tmp_path), scenario, mode]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")


def start_rank(storage: str, scenario: str):
    """A rank script's start under torchrun: the gloo process group; rank 0 asks the trial
    (pruned at its first rung in the ``prune`` scenario). Returns ``(rank, study, trial,
    budgets, source)``: the callback's budgets (the ``prune`` scenario's ladder) and its
    source (a ``TorchDistributedTrial``, or a bare ladder in the ``ladder`` scenario, which
    DDP refuses)."""
    TorchDistributedTrial = importlib.import_module("optuna_integration").TorchDistributedTrial

    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))  # torchrun's env://
    rank = dist.get_rank()
    trial = study = None
    if rank == 0:
        import budgetopt

        pruner = optuna.pruners.ThresholdPruner(lower=1e9) if scenario == "prune" else budgetopt.BudgetPruner(4, 16, 2)
        study = optuna.load_study(study_name="s", storage=storage, pruner=pruner)
        trial = study.ask()
    budgets = [4, 8, 16] if scenario == "prune" else None
    source = [4, 8, 16] if scenario == "ladder" else TorchDistributedTrial(trial)
    return rank, study, trial, budgets, source


def finish_rank(rank: int, study, trial, run, result: dict, out: str) -> None:
    """A rank script's end: rank 0 tells the study the trial's outcome, every rank saves
    ``result`` as OUT/rank{R}.pt, and all meet before the process group goes."""
    if rank == 0:
        outcome = result["outcome"]
        if outcome == "complete":
            study.tell(trial, run.value)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED if outcome.startswith("pruned")
                       else optuna.trial.TrialState.FAIL)
    torch.save(result, Path(out) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()
