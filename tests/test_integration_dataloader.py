"""Segment.batches: a segment's batches drawn from a DataLoader across epochs, in the
data order each mode documents."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import budgetopt
from budgetopt.modes import compute

BUDGETS = [4, 9, 16]
DATASET = TensorDataset(torch.arange(20))  # batches of 3: 7 per epoch, the last of 2


def shuffled_loader(seed: int = 0) -> DataLoader:
    return DataLoader(DATASET, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(seed))


def reference_stream(n: int, seed: int = 0) -> list[list[int]]:
    """The first ``n`` batches of a fresh loader read epoch after epoch."""
    loader, out = shuffled_loader(seed), []
    while len(out) < n:
        out.extend(batch.tolist() for (batch,) in loader)
    return out[:n]


def segments_of(mode, loader, replay=True, budgets=BUDGETS):
    """The batches each segment trained on (lists of item ids)."""
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = budgetopt.BudgetedRun(budgets, model, optimizer, mode=mode)
    out = []
    for segment in run.segments():
        seen = []
        for (batch,) in segment.batches(loader, replay=replay):
            seen.append(batch.tolist())
            optimizer.step()
        assert len(seen) == segment.compute  # one batch per step, none drawn past the budget
        out.append(seen)
        segment.report(0.0)
    return out, run


@pytest.mark.parametrize("mode", budgetopt.MODES)
@pytest.mark.parametrize("replay", [True, False])
def test_exact_budget_across_epoch_boundaries(mode, replay):
    segments, run = segments_of(mode, shuffled_loader(), replay)
    assert [len(s) for s in segments] == list(run.segment_compute.values())
    assert sum(map(len, segments)) == run.compute == compute(mode, BUDGETS)
    stream = run._stream
    # positions past the first epoch's 7 batches: the stream crossed epoch boundaries
    assert stream.epoch == (stream.pos - 1) // 7 and stream.epoch >= 2


def test_data_order_of_each_mode():
    ref = reference_stream(40)
    # restart, replay (default): each budget is the first B batches of a fresh run
    segments, _ = segments_of("restart", shuffled_loader())
    assert segments == [ref[:b] for b in BUDGETS]
    # restart, replay=False: one stream, each budget continuing after the previous one
    segments, _ = segments_of("restart", shuffled_loader(), replay=False)
    assert sum(segments, []) == ref[: sum(BUDGETS)]
    # branch, replay: every step t reads batch t; the next trunk re-reads the cooldown's batches
    segments, run = segments_of("branch", shuffled_loader())
    assert segments == [ref[b - run.segment_compute[b] : b] for b in BUDGETS]
    assert segments[1][0] == ref[2]  # budget 4's trunk ended at 2 (cooldown 0.5); its cooldown read ref[2] too
    # branch, replay=False: one stream
    segments, run = segments_of("branch", shuffled_loader(), replay=False)
    assert sum(segments, []) == ref[: run.compute]
    # continue: one pass, whatever replay says
    for replay in (True, False):
        segments, _ = segments_of("continue", shuffled_loader(), replay)
        assert sum(segments, []) == ref[: BUDGETS[-1]]


class RecordingSampler(DistributedSampler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)
        super().set_epoch(epoch)


@pytest.mark.parametrize(
    "mode, replay, epochs",
    [
        ("restart", True, [0, 0, 1, 0, 1, 2]),  # 4, 9 and 16 steps: epochs 0 / 0-1 / 0-2, each from epoch 0
        ("restart", False, [0, 1, 2, 3, 4]),  # 29 steps in one stream
        ("continue", True, [0, 1, 2]),
    ],
)
def test_set_epoch_called_on_a_distributed_sampler(mode, replay, epochs):
    sampler = RecordingSampler(DATASET, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(DATASET, batch_size=3, sampler=sampler)
    segments, _ = segments_of(mode, loader, replay)
    assert sampler.epochs == epochs
    # DistributedSampler's order is a function of the epoch: a replayed budget repeats it
    if mode == "restart" and replay:
        assert segments[2][:9] == segments[1] and segments[1][:4] == segments[0]


class DropoutNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)


def train_final_model(mode, budgets, replay=True):
    """A run whose data order (shuffle=True, no generator) and dropout come from torch's global RNG."""
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(50, 4), torch.randn(50, 1))
    loader = DataLoader(data, batch_size=8, shuffle=True)
    model = DropoutNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    run = budgetopt.BudgetedRun(budgets, model, optimizer, mode=mode)
    for segment in run.segments():
        for x, y in segment.batches(loader, replay=replay):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        torch.rand(3)  # the user's evaluation may draw random numbers too
        segment.report(0.0)
    return model


@pytest.mark.parametrize("mode", ["restart", "branch"])
def test_replay_makes_the_last_budget_a_fresh_run_randomness_included(mode):
    # restart's last budget = a fresh run of 40 steps; branch's = one uninterrupted WSD run of 40
    ladder, fresh = train_final_model(mode, [5, 15, 40]), train_final_model(mode, [40])
    for a, b in zip(ladder.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    continued = train_final_model(mode, [5, 15, 40], replay=False)
    assert not all(torch.equal(a, b) for a, b in zip(continued.parameters(), fresh.parameters()))


def test_budget_from_epochs_with_partial_last_epochs():
    loader = shuffled_loader()  # len(loader) == 7 steps per epoch
    assert budgetopt.budget_from_epochs(2, len(loader)) == 14
    assert budgetopt.budget_from_epochs(Fraction(16, 7), len(loader)) == 16  # exact with a Fraction
    assert budgetopt.budget_from_epochs(0.7, 30) == 21 and budgetopt.budget_from_epochs(2.3, 10) == 23  # float error rounds away
    assert budgetopt.budget_from_epochs(2.5, len(loader)) == 18  # 17.5 steps: round() takes a half to the even count
    budgets = [budgetopt.budget_from_epochs(e, len(loader)) for e in (1, 2.5)]
    segments, run = segments_of("continue", loader, budgets=budgets)
    assert [len(s) for s in segments] == [7, 11]
    assert (run._stream.epoch, run._stream.pos) == (2, 18)  # stopped 4 batches into the third epoch


def test_bad_loaders():
    run = budgetopt.BudgetedRun([3], nn.Linear(1, 1), torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
    segment = next(run.segments())
    with pytest.raises(TypeError, match="an iterator can be read only once"):
        next(segment.batches(iter([1, 2, 3])))
    run = budgetopt.BudgetedRun([3], nn.Linear(1, 1), torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
    with pytest.raises(ValueError, match="the loader yielded no batch in epoch 0"):
        next(next(run.segments()).batches([]))


def test_dataloader_epochs_example(capsys):
    path = Path(__file__).resolve().parents[1] / "examples" / "dataloader_epochs.py"
    spec = importlib.util.spec_from_file_location("dataloader_epochs", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    study = example.main(["--trials", "4"])
    assert "ladder in steps: 13 (0.34 epochs), 39 (1.03 epochs), 117 (3.08 epochs), 342 (9.00 epochs)" in capsys.readouterr().out
    best = study.best_trial
    assert best.user_attrs["budgetopt.plan"] == [13, 39, 117, 342]
    assert best.user_attrs["budgetopt.compute"] == 13 + 39 + 117 + 342  # restart: the sum of the budgets
    assert best.value > 0.5  # far above chance (0.1)
