"""Quickstart: budget-aware training of a small CNN on scikit-learn's digits.

Trains one configuration at three budgets (50, 150 and 450 iterations) with
:class:`budgetopt.BudgetedRun`, no Optuna, in each mode:

- ``restart``: every budget trained from the initial weights with the learning rate
  decaying linearly to 0 at that budget (Li et al., ICLR 2020);
- ``branch``: one constant-rate trunk, a linear cooldown over the last half of each
  budget, the trunk restored after each report (warmup-stable-decay);
- ``continue``: the baseline, one linear schedule over the largest budget, evaluated
  at the smaller budgets while the rate is still high.

It prints the test accuracy and the compute (iterations executed, re-done ones
included) at every budget, and each mode's total compute. Digits ships with
scikit-learn (1,797 8x8 images), so nothing is downloaded; the whole script runs in a
few seconds on two CPU cores::

    python examples/quickstart.py

The data, model and training loop here are reused by the tests and by
``studies/bench_overhead.py`` (they import this file by path), so the numbers those
report are about exactly this code.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import budgetopt

BUDGETS = (50, 150, 450)
BATCH_SIZE = 64


def load_digits_tensors(test_size: int = 497, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``: digits as 1x8x8 float images in [0, 1].

    The split is a fixed permutation drawn from ``seed``: 1,300 training and 497 test
    images by default.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, train = order[:test_size], order[test_size:]
    return x[train], y[train], x[test], y[test]


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions and a linear head: about 24k parameters for 8x8 digits."""

    def __init__(self, width: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class Batches:
    """The ``t``-th training batch, the same for every mode and every re-run.

    Batch ``t`` is slice ``t % steps_per_epoch`` of the permutation of epoch
    ``t // steps_per_epoch``, drawn from ``seed``. Indexing by the iteration (rather
    than drawing from a running generator) is what makes restart's re-runs and
    branch's re-done cooldowns see the same data as a single plain run.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH_SIZE, seed: int = 0) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.steps_per_epoch = len(y) // batch_size  # drop the ragged last batch
        self._orders: dict[int, torch.Tensor] = {}

    def __call__(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(t, self.steps_per_epoch)
        if epoch not in self._orders:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._orders[epoch] = torch.randperm(len(self.y), generator=gen)
        idx = self._orders[epoch][i * self.batch_size : (i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """One SGD step on ``batch``; returns the (undetached) loss."""
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(accuracy, cross-entropy loss)`` of ``model`` on ``(x, y)``."""
    model.eval()
    logits = model(x)
    model.train()
    return (logits.argmax(1) == y).float().mean().item(), nn.functional.cross_entropy(logits, y).item()


def make_model(seed: int, lr: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The CNN with weights drawn from ``seed`` and its SGD (momentum 0.9) at peak ``lr``."""
    torch.manual_seed(seed)
    model = DigitsCNN()
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train_at_budgets(mode: str, budgets=BUDGETS, *, lr: float = 0.1, seed: int = 0, data=None) -> budgetopt.BudgetedRun:
    """Train one configuration at ``budgets`` in ``mode``; the run holds accuracy and compute."""
    x_train, y_train, x_test, y_test = data if data is not None else load_digits_tensors()
    batches = Batches(x_train, y_train, seed=seed)
    model, optimizer = make_model(seed, lr)
    run = budgetopt.BudgetedRun(list(budgets), model, optimizer, mode=mode)
    for segment in run.segments():
        for t in segment:  # the learning rate of step t is already set
            run.record_loss(train_step(model, optimizer, batches(t)))
        segment.report(evaluate(model, x_test, y_test)[0])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="increasing budgets in iterations")
    parser.add_argument("--modes", nargs="+", default=["restart", "branch", "continue"], choices=budgetopt.MODES)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate of SGD (momentum 0.9)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # A CNN this small gains nothing from intra-op threads, and on a busy machine they
    # spin against other processes (10x slower on two shared cores): one thread.
    torch.set_num_threads(1)

    data = load_digits_tensors()
    print(f"digits: {len(data[1])} training / {len(data[3])} test images, batch {BATCH_SIZE}, SGD lr {args.lr}")
    print(f"{'mode':<9} {'budget':>6} {'accuracy':>8} {'compute':>7} {'last lr':>9}")
    for mode in args.modes:
        start = time.perf_counter()
        run = train_at_budgets(mode, args.budgets, lr=args.lr, seed=args.seed, data=data)
        trace, end = run.lr_trace, 0
        for budget, acc in run.rung_values.items():
            end += run.segment_compute[budget]
            # the rate of the budget's last step: it reaches 0 only after that step
            print(f"{mode:<9} {budget:>6} {acc:>8.3f} {run.segment_compute[budget]:>7} {trace[end - 1]:>9.4f}")
        note = f" ({run.ended})" if run.diverged else ""
        print(f"{mode:<9} {'total':>6} {'':>8} {run.compute:>7}   {time.perf_counter() - start:.1f} s{note}")


if __name__ == "__main__":
    main()
