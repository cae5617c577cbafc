"""A budget-aware Optuna study of a PyTorch Lightning model on scikit-learn's digits.

``BudgetPruningCallback`` takes the place of Optuna's ``PyTorchLightningPruningCallback``:
it sets the learning rate of every optimizer step from the trial's budget plan (linear
decay to zero at each budget, ``restart`` mode by default), runs validation exactly at
the rungs and reports there, and the study's ``BudgetPruner`` prunes between them::

    pip install -c constraints.txt -e '.[lightning]'
    python examples/lightning_study.py                 # 20 trials
    python examples/lightning_study.py --trials 4      # 18 s on two CPU cores, imports included
    budgetopt frontier sqlite:///budgetopt-lightning.db --study digits-lightning
"""

from __future__ import annotations

import argparse
import importlib
import logging
import warnings

import optuna
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import budgetopt
from budgetopt.data import load_digits
from budgetopt.integration.lightning import BudgetPruningCallback

# Lightning after budgetopt's integration, which repairs a CUDA torchvision beside a
# CPU-only torch first (Lightning imports torchvision through torchmetrics).
L = importlib.import_module("lightning.pytorch")

DATA = load_digits()  # 1,197 / 300 / 300 images of 8x8, shipped with scikit-learn
STEPS_PER_EPOCH = 19  # 1,197 images in batches of 64


class LitMLP(L.LightningModule):
    def __init__(self, width: int, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
        self.lr, self.weight_decay = lr, weight_decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        # lr is the peak rate: the callback decays it to zero at each budget's end
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)


def loaders(seed: int) -> tuple[DataLoader, DataLoader]:
    x, y = DATA.train
    train = DataLoader(
        TensorDataset(x.flatten(1), y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    vx, vy = DATA.val
    return train, DataLoader(TensorDataset(vx.flatten(1), vy), batch_size=len(vy))


def objective(trial: optuna.Trial) -> float:
    torch.manual_seed(trial.number)
    model = LitMLP(
        width=trial.suggest_categorical("width", [16, 32, 64]),
        lr=trial.suggest_float("lr", 1e-3, 1.0, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    )
    budget = BudgetPruningCallback(trial, monitor="val_acc")
    train, val = loaders(trial.number)
    trainer = L.Trainer(
        max_epochs=-1, callbacks=[budget], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, train, val)  # raises optuna.TrialPruned when the pruner says so
    return budget.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--storage", default="sqlite:///budgetopt-lightning.db")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated", FutureWarning)  # lightning 2.6 on torch 2.13
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="digits-lightning",
        storage=args.storage,
        load_if_exists=True,
        direction="maximize",
        sampler=budgetopt.BudgetSampler(seed=0),
        # budgets in optimizer steps: 1 to 9 epochs of 19 steps
        pruner=budgetopt.BudgetPruner(
            min_budget=budgetopt.budget_from_epochs(1, STEPS_PER_EPOCH),
            max_budget=budgetopt.budget_from_epochs(9, STEPS_PER_EPOCH),
            reduction_factor=3,
        ),
    )
    study.optimize(objective, n_trials=args.trials)
    best = study.best_trial
    print(f"best trial #{best.number}: val_acc {best.value:.4f} with {best.params}")
    front = budgetopt.frontier(study)  # the best trial and value for every budget, pruned trials included
    for row in front:
        if row.trial is not None:
            print(f"  budget {row.budget:4d}: trial #{row.trial} val_acc {row.value:.4f} ({row.measured} trials measured)")
    print(f"inspect it: budgetopt frontier {args.storage} --study digits-lightning")


if __name__ == "__main__":
    main()
