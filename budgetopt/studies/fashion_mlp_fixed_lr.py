"""The cheap Fashion-MNIST MLP study with the learning rate out of the search space.

Everything as in :mod:`budgetopt.studies.fashion_mlp` (data, model, both ladders), but
the peak learning rate is fixed at each optimizer's usual rate (``lr_scale`` 1: SGD
0.1, AdamW 0.001), and the search is over architecture and regularisation only
(layers, units, dropout, optimizer, weight decay): the NAS use case, where the
horizon's effect on the optimal learning rate cannot bias the ranking.
"""

from __future__ import annotations

from budgetopt.studies.fashion_mlp import (  # noqa: F401  (the protocol's names)
    batches,
    chance,
    direction,
    evaluate,
    ladder,
    ladders,
    load_data,
    quick_ladder,
    train_step,
)
from budgetopt.studies.fashion_mlp import build as _build
from budgetopt.studies.fashion_mlp import search_space as _space

LR_SCALE = 1.0


def search_space(trial):
    return _space(trial, learning_rate=False)


def build(params, device):
    return _build({**params, "lr_scale": LR_SCALE}, device)
