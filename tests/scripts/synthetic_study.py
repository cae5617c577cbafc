"""A study script that trains nothing but goes through the whole study-script protocol.

The model is one parameter and a buffer counting optimizer steps, so ``evaluate`` knows
how many iterations the model has seen: after a correct budget ``B`` the count is ``B``
in every mode (restart mode's restore resets it, branch mode's trunk snapshot carries
it), and the score is :func:`score` of the params at that count, noise seeded by both.
A model restored from the wrong snapshot scores differently, so the tests can check
every rung value against :func:`score`.

Environment variables (read when a step runs, so a test sets them per worker):

- ``SYNTHETIC_STEP_SECONDS``: sleep this long in every step (time to kill a worker in
  the middle of a segment).
- ``SYNTHETIC_NAN_ABOVE``: the training loss is NaN when ``lr`` is above this.
- ``SYNTHETIC_RAISE``: ``train_step`` raises ``RuntimeError`` with this message
  (only when ``lr`` is above ``SYNTHETIC_RAISE_ABOVE``, when that is set).
- ``SYNTHETIC_SAVE_SECONDS``: ``model.state_dict()`` sleeps this long (time to kill a
  worker between naming a kept model and writing it).
- ``SYNTHETIC_LOG``: a file; ``search_space`` appends ``trial_number pid`` to it, so a
  test knows which process ran which trial, and how often.
- ``SYNTHETIC_GATE``: a file; ``search_space`` waits until it exists (after logging),
  so that a test can hold every worker at its first trial and release them together.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import time
from pathlib import Path

import torch

direction = "maximize"
ladder = (3, 27, 3)  # rungs 3, 9, 27
quick_ladder = ladder


def score(params: dict, budget: int) -> float:
    """Grows with the budget, best near lr = 0.03 and width = 16; noise fixed by (params, budget)."""
    quality = -((math.log10(params["lr"]) + 1.5) ** 2) - 0.1 * abs(params["width"] - 16) / 16
    noise = random.Random(f"{params['lr']!r}-{params['width']}-{budget}").gauss(0, 0.01)
    return quality * 27 / max(budget, 1) ** 0.5 + noise


def load_data(data_dir=None, quick=False):
    if data_dir is not None and not Path(data_dir).is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    return None


def search_space(trial):
    log = os.environ.get("SYNTHETIC_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{trial.number} {os.getpid()}\n")
    gate = os.environ.get("SYNTHETIC_GATE")
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    return {"lr": trial.suggest_float("lr", 1e-4, 1.0, log=True), "width": trial.suggest_int("width", 4, 32)}


class StepCounter(torch.nn.Module):
    def __init__(self, params: dict) -> None:
        super().__init__()
        self.params = dict(params)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def state_dict(self, *args, **kwargs):
        seconds = float(os.environ.get("SYNTHETIC_SAVE_SECONDS", "0"))
        if seconds:
            time.sleep(seconds)
        return super().state_dict(*args, **kwargs)


def build(params, device):
    model = StepCounter(params).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=params["lr"])


def batches(data, seed, device):
    return itertools.repeat(None)


def train_step(model, optimizer, batch, params):
    seconds = float(os.environ.get("SYNTHETIC_STEP_SECONDS", "0"))
    if seconds:
        time.sleep(seconds)
    message = os.environ.get("SYNTHETIC_RAISE")
    if message and params["lr"] > float(os.environ.get("SYNTHETIC_RAISE_ABOVE", "-inf")):
        raise RuntimeError(message)
    model.steps += 1
    optimizer.step()
    if params["lr"] > float(os.environ.get("SYNTHETIC_NAN_ABOVE", "inf")):
        return float("nan")
    return 0.0


def evaluate(model, data, split, device):
    return score(model.params, int(model.steps))
