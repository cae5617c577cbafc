"""Fashion-MNIST with an MLP, the shape of Optuna's official PyTorch example: the cheap study.

Built for benchmark tables (``budgetopt bench build``): a full budget trains in about
a second on one CPU core, so a pool of hundreds of configurations x seeds x modes fits
on two cores.

Data: Fashion-MNIST (:func:`budgetopt.data.load_fashion_mnist`: ``--data-dir``,
torchvision's root, Debian's ``dataset-fashion-mnist``, else download), each 28x28 image
average-pooled 2x2 to 14x14 and flattened to 196 inputs (a pooled pixel is the mean of
four normalised pixels), all in memory; 50,000 training, 10,000 validation (carved from
the training set), 10,000 test images. ``quick=True`` keeps 2,000 validation images.

Model: ``n_layers`` (1-3) hidden layers of ``units`` (32-256) ReLU units, each followed by
dropout ``dropout`` (0-0.5), then a linear layer to 10 classes. Optimizer: SGD with
Nesterov-free momentum 0.9, or AdamW; the peak learning rate is ``lr_scale`` times the
optimizer's usual rate (:data:`BASE_LR`: SGD 0.1, AdamW 0.001), ``lr_scale`` log-uniform
in [0.03, 30] (three decades around each usual rate, so the learning rate means the same
for both optimizers); ``weight_decay`` log-uniform in [1e-5, 1e-2] (AdamW's is decoupled).

Batch 128: an epoch is 390 iterations. Two ladders (``--ladder short|long``):

- ``short`` (default): 15 / 45 / 135 / 405 iterations (eta 3), the full budget about one
  epoch;
- ``long``: 30 / 90 / 270 / 810 / 2,430, six times the short full budget (6.2 epochs).

``fashion_mlp_fixed_lr`` is the same study with the learning rate out of the space.
"""

from __future__ import annotations

import torch
from torch import nn

from budgetopt.data import Splits, load_fashion_mnist, tensor_batches
from budgetopt.study_script import accuracy

direction = "maximize"
ladders = {"short": (15, 405, 3), "long": (30, 2430, 3)}
ladder = ladders["short"]
quick_ladder = (5, 135, 3)
chance = 0.1  # accuracy of a guess among 10 classes
BATCH_SIZE = 128
BASE_LR = {"sgd": 0.1, "adamw": 0.001}
MOMENTUM = 0.9


def load_data(data_dir=None, quick=False):
    return _pooled(load_fashion_mnist(data_dir, val_size=2_000 if quick else 10_000))


def _pooled(splits: Splits) -> Splits:
    def flat(pair):
        x, y = pair
        return nn.functional.avg_pool2d(x, 2).flatten(1).contiguous(), y

    return Splits(train=flat(splits.train), val=flat(splits.val), test=flat(splits.test), source=f"{splits.source}, pooled to 14x14")


def search_space(trial, learning_rate=True):
    """The space; ``learning_rate=False`` leaves ``lr_scale`` out (``fashion_mlp_fixed_lr``)."""
    params = {
        "n_layers": trial.suggest_int("n_layers", 1, 3),
        "units": trial.suggest_int("units", 32, 256, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "optimizer": trial.suggest_categorical("optimizer", ["sgd", "adamw"]),
    }
    if learning_rate:
        params["lr_scale"] = trial.suggest_float("lr_scale", 0.03, 30.0, log=True)
    params["weight_decay"] = trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True)
    return params


def mlp(n_layers: int, units: int, dropout: float, inputs: int = 196, classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(inputs if i == 0 else units, units), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers, nn.Linear(units, classes))


def build(params, device):
    model = mlp(params["n_layers"], params["units"], params["dropout"]).to(device)
    lr = params["lr_scale"] * BASE_LR[params["optimizer"]]
    if params["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=params["weight_decay"])
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=params["weight_decay"])
    return model, optimizer


def batches(data, seed, device):
    return tensor_batches(*data.train, batch_size=BATCH_SIZE, seed=seed, device=device)


def train_step(model, optimizer, batch, params):
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def evaluate(model, data, split, device):
    return accuracy(model, [getattr(data, split)], device, chunk=2048)
