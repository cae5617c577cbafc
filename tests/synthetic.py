"""A training-free objective for pruner/sampler tests: real BudgetedRun, synthetic scores.

The model is one parameter and the "training step" does nothing, so a trial costs only
the run's own bookkeeping. The score at budget B is a smooth function of the
parameters that grows with B (rank-consistent across budgets) plus a little noise
seeded by (trial number, budget). Run as a script it is a worker process:
``python tests/synthetic.py STORAGE STUDY N_TRIALS``.
"""

from __future__ import annotations

import math
import random
import sys

import optuna
import torch

import budgetopt

LADDER = dict(min_budget=3, max_budget=27, reduction_factor=3)


def score(params: dict, budget: int, noise: float) -> float:
    quality = -((math.log10(params["lr"]) + 1.5) ** 2) - 0.1 * abs(params["width"] - 16) / 16
    return quality * 27 / budget**0.5 + noise


def objective(trial: optuna.Trial) -> float:
    params = {"lr": trial.suggest_float("lr", 1e-4, 1, log=True), "width": trial.suggest_int("width", 4, 32)}
    model = torch.nn.Linear(1, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"])
    run = budgetopt.BudgetedRun(trial, model, optimizer, mode="restart")
    for segment in run.segments():
        for _ in segment:
            optimizer.step()
        noise = random.Random(f"{trial.number}-{segment.budget}").gauss(0, 0.01)
        segment.report(score(params, segment.budget, noise))
    return run.value


def make_study(storage: object, name: str, seed: int | None = None, brackets: int | str = 1) -> optuna.Study:
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=budgetopt.BudgetSampler(seed=seed),
        pruner=budgetopt.BudgetPruner(**LADDER, brackets=brackets),
        load_if_exists=True,
    )


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_url, study_name, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    storage: object = storage_url
    if storage_url.endswith(".log"):
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage_url))
    brackets = sys.argv[4] if len(sys.argv) > 4 else "1"
    make_study(storage, study_name, brackets=int(brackets) if brackets.isdigit() else brackets).optimize(
        objective, n_trials=n_trials
    )
