"""Two ranks of one trial under torchrun (gloo, CPU), for the DDP tests of the Lightning and
Hugging Face Trainer callbacks: what the tests share (``require``, ``run_ranks``) and what
their rank scripts share (``finish_rank``)."""

from __future__ import annotations

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
