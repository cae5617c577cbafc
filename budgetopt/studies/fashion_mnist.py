"""Fashion-MNIST with a small two-layer CNN: the project's first reference study.

Model: conv 3x3 (``width`` channels) - ReLU - max-pool 2 - conv 3x3 (``2 * width``) - ReLU -
max-pool 2 - linear to 10 classes. SGD with momentum, batch 128, cross-entropy with
label smoothing. One epoch of the 50,000 training images is 390 iterations; the default
ladder 27 / 81 / 243 / 729 (eta 3) ends at about two epochs. On one busy CPU core an
iteration took about 20 / 45 / 120 ms at width 8 / 16 / 32, and an evaluation of the
10,000 validation images 1-3 s. Score: validation accuracy (10,000 images carved from
the training set; 2,000 with ``quick=True``).
Data: :func:`budgetopt.data.load_fashion_mnist` (``--data-dir``, torchvision's root,
Debian's ``dataset-fashion-mnist``, else download).
"""

from __future__ import annotations

import torch
from torch import nn

from budgetopt.data import load_fashion_mnist, tensor_batches
from budgetopt.study_script import accuracy

direction = "maximize"
ladder = (27, 729, 3)
quick_ladder = (9, 243, 3)
chance = 0.1  # accuracy of a guess among 10 classes
BATCH_SIZE = 128


def load_data(data_dir=None, quick=False):
    # quick (the demo): 2,000 validation images; on a CPU evaluating 10,000 costs as much
    # as ~30 training steps, more than the quick ladder's lowest rung itself.
    return load_fashion_mnist(data_dir, val_size=2_000 if quick else 10_000)


def search_space(trial):
    return {
        "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        "momentum": trial.suggest_float("momentum", 0.5, 0.95),
        "width": trial.suggest_categorical("width", [8, 16, 32]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
    }


def small_cnn(width: int, image_size: int, in_channels: int = 1, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (image_size // 4) ** 2, classes),
    )


def build(params, device, image_size=28):
    model = small_cnn(params["width"], image_size).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=params["lr"], momentum=params["momentum"], weight_decay=params["weight_decay"]
    )
    return model, optimizer


def batches(data, seed, device):
    return tensor_batches(*data.train, batch_size=BATCH_SIZE, seed=seed, device=device)


def train_step(model, optimizer, batch, params):
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y, label_smoothing=params["label_smoothing"])
    loss.backward()
    optimizer.step()
    return loss


def evaluate(model, data, split, device):
    return accuracy(model, [getattr(data, split)], device)
