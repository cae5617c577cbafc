"""A budget-aware Optuna study written the way epoch loops are: a DataLoader, budgets in epochs.

An MLP on scikit-learn's digits (1,197 training images, batches of 32: 38 steps per
epoch, the last batch smaller) searched with BudgetSampler + BudgetPruner. The ladder
runs from a third of an epoch to 9 epochs, converted to optimizer steps with
``budget_from_epochs(epochs, len(train_loader))``: 13 steps (12.67, rounded) and 342;
the rungs between are 3x apart, 39 and 117 steps (about 1 and 3 epochs). Each budget
draws its batches from the DataLoader with ``segment.batches(train_loader)``, across
epoch boundaries and stopping exactly at the budget, in the middle of an epoch when that
is where it ends.

Data order: in ``restart`` mode (default) every budget replays the loader from its
first batch, with the same shuffling (the loader's seeded ``generator``) and random
state, so the model at a rung is exactly a fresh run of that length. ``--continue-stream``
passes ``replay=False``: each budget continues where the previous one stopped.
``--mode branch`` and ``--mode continue`` run the other modes::

    python examples/dataloader_epochs.py                 # 30 trials, a few seconds on 2 CPU cores
    python examples/dataloader_epochs.py --mode branch --trials 60
    python examples/dataloader_epochs.py --storage sqlite:///dataloader.db   # then budgetopt dashboard
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import optuna
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import budgetopt
from budgetopt.data import load_digits

DATA = load_digits()  # 1,197 / 300 / 300 standardised 8x8 images, shipped with scikit-learn
BATCH_SIZE = 32
MIN_EPOCHS, MAX_EPOCHS = Fraction(1, 3), 9  # a Fraction converts exactly; 1 / 3 would do as well here


def train_loader(seed: int) -> DataLoader:
    x, y = DATA.train
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x.flatten(1), y), batch_size=BATCH_SIZE, shuffle=True, generator=generator)


STEPS_PER_EPOCH = len(train_loader(0))  # 38: 37 batches of 32 and one of 13
MIN_BUDGET = budgetopt.budget_from_epochs(MIN_EPOCHS, STEPS_PER_EPOCH)  # 13
MAX_BUDGET = budgetopt.budget_from_epochs(MAX_EPOCHS, STEPS_PER_EPOCH)  # 342


@torch.no_grad()
def accuracy(model: nn.Module) -> float:
    x, y = DATA.val
    model.eval()
    value = (model(x.flatten(1)).argmax(1) == y).float().mean().item()
    model.train()
    return value


def make_objective(mode: str, replay: bool):
    def objective(trial: optuna.Trial) -> float:
        width = trial.suggest_categorical("width", [32, 64, 128])
        lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
        torch.manual_seed(trial.number)
        model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Dropout(0.1), nn.Linear(width, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
        loader = train_loader(seed=trial.number)
        run = budgetopt.BudgetedRun(trial, model, optimizer, mode=mode)
        for segment in run.segments():  # one per rung this trial reaches
            for x, y in segment.batches(loader, replay=replay):  # this step's learning rate is already set
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.record_loss(loss)  # a NaN/inf loss ends the trial, with its reason
            segment.report(accuracy(model))  # raises optuna.TrialPruned when the pruner says so
        return run.value

    return objective


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--mode", choices=budgetopt.MODES, default="restart")
    parser.add_argument("--continue-stream", action="store_true", help="segment.batches(loader, replay=False)")
    parser.add_argument("--storage", default=None, help="an Optuna storage URL (default: in memory)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a model this small gains nothing from intra-op threads
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    study = optuna.create_study(
        storage=args.storage,
        direction="maximize",
        sampler=budgetopt.BudgetSampler(seed=0),
        pruner=budgetopt.BudgetPruner(min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, reduction_factor=3),
    )
    start = time.perf_counter()
    study.optimize(make_objective(args.mode, replay=not args.continue_stream), n_trials=args.trials)
    seconds = time.perf_counter() - start

    rungs = study.pruner.ladder.rungs
    ladder = ", ".join(f"{b} ({b / STEPS_PER_EPOCH:.2f} epochs)" for b in rungs)
    print(f"ladder in steps: {ladder}; {STEPS_PER_EPOCH} steps per epoch")
    trials = study.trials
    reached = ", ".join(f"{b}: {sum(b in t.intermediate_values for t in trials)}" for b in rungs)
    compute = sum(t.user_attrs.get("budgetopt.compute", 0) for t in trials)
    print(f"{len(trials)} trials in {seconds:.1f} s ({args.mode} mode); trials reaching each budget: {reached}")
    share = compute / (len(trials) * MAX_BUDGET)
    print(f"compute: {compute:,} steps = {compute / STEPS_PER_EPOCH:.0f} epochs ({share:.0%} of a full-budget search)")
    best = study.best_trial
    print(f"best trial #{best.number}: validation accuracy {best.value:.3f} after {MAX_BUDGET} steps, params {best.params}")
    return study


if __name__ == "__main__":
    main()
