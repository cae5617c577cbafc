"""A budget-aware Optuna study of a small CNN on scikit-learn's digits.

The user code of the README's "Use it", running for real: BudgetSampler + BudgetPruner give every
trial a plan of budgets (successive halving over 10 / 30 / 90 / 270 iterations),
BudgetedRun trains each budget with a learning rate decaying linearly to 0 at it
("restart" mode: the paper, exactly), and each rung's validation accuracy is
budget-converged. The study lives in SQLite, so budgetopt dashboard (optuna-dashboard with
budgetopt's note and figures) can open it::

    python examples/optuna_study.py                 # 40 trials, about a minute on 2 CPU cores
    python examples/optuna_study.py --trials 8      # a few seconds
    budgetopt dashboard sqlite:///budgetopt-example.db
"""

from __future__ import annotations

import argparse
import itertools

import optuna
import torch
from torch import nn

import budgetopt
from budgetopt.data import load_digits

DATA = load_digits()  # 1,197 / 300 / 300 images of 8x8, shipped with scikit-learn


def make_model(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 16, 10),
    )


def batches(seed: int, batch_size: int = 32):
    """An endless stream of shuffled training batches."""
    x, y = DATA.train
    generator = torch.Generator().manual_seed(seed)
    for _ in itertools.count():
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y) - batch_size + 1, batch_size):
            yield x[order[i : i + batch_size]], y[order[i : i + batch_size]]


@torch.no_grad()
def evaluate(model: nn.Module) -> float:
    x, y = DATA.val
    model.eval()
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return accuracy


def objective(trial: optuna.Trial) -> float:
    torch.manual_seed(trial.number)
    model = make_model(trial.suggest_categorical("width", [8, 16, 32]))
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=trial.suggest_float("lr", 1e-3, 1.0, log=True),
        momentum=trial.suggest_float("momentum", 0.0, 0.95),
        weight_decay=trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
    )
    run = budgetopt.BudgetedRun(trial, model, optimizer, mode="restart")
    for segment in run.segments():  # one per rung this trial reaches
        stream = batches(seed=trial.number)  # restart: each budget is a fresh run
        for _ in segment:  # the learning rate of this step is already set
            x, y = next(stream)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            run.record_loss(loss)  # a NaN/inf loss ends the trial, with its reason
        segment.report(evaluate(model))  # raises optuna.TrialPruned when the pruner says so
    return run.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--storage", default="sqlite:///budgetopt-example.db")
    parser.add_argument("--study", default="digits-budget-aware")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    study = optuna.create_study(
        study_name=args.study,
        storage=args.storage,
        load_if_exists=True,
        direction="maximize",
        sampler=budgetopt.BudgetSampler(seed=0),
        pruner=budgetopt.BudgetPruner(min_budget=10, max_budget=270, reduction_factor=3),
    )
    study.optimize(objective, n_trials=args.trials)

    trials = study.trials
    compute = sum(t.user_attrs.get("budgetopt.compute", 0) for t in trials)
    full = len(trials) * study.pruner.ladder.max_budget
    per_rung = {b: sum(b in t.intermediate_values for t in trials) for b in study.pruner.ladder.rungs}
    best = study.best_trial
    print(f"{len(trials)} trials; trials reaching each budget: " + ", ".join(f"{b}: {n}" for b, n in per_rung.items()))
    print(f"compute: {compute:,} iterations ({compute / full:.0%} of the {full:,} a full-budget search would spend)")
    print(f"best trial #{best.number}: validation accuracy {best.value:.3f}")
    print(f"  params  {best.params}")
    print(f"  plan    {best.user_attrs['budgetopt.plan']}, compute {best.user_attrs['budgetopt.compute']}")
    print(f"inspect it:  budgetopt dashboard {args.storage}")


if __name__ == "__main__":
    main()
