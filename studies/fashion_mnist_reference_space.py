"""Fashion-MNIST with the project design's *reference* search space (momentum 0.9 fixed, no label smoothing).

The design's reference point (restart 0.88 vs continue 0.65 lowest-rung Spearman) was measured with the learning
rate log-uniform over 1e-3..1, weight decay 1e-5..1e-2, width 8/16/32, SGD momentum
fixed at 0.9 and no label smoothing. The built-in ``fashion_mnist`` study also searches
momentum (0.5..0.95) and label smoothing (0..0.2). This script is that study with the
reference space, so the two can be compared: same model, data, ladder and evaluation.

    budgetopt compare studies/fashion_mnist_reference_space.py --methods none --pool 24 --truth-seeds 1 --jobs 2
    budgetopt compare studies/fashion_mnist_reference_space.py --methods none --pool 24 --truth-seeds 2 \
        --pool-seed 1 --cooldown 0.1 --jobs 2

Their reports: ``studies/results/compare_fashion_mnist_reference_space{,_pool1}/report.md``.
"""

from __future__ import annotations

from budgetopt.studies.fashion_mnist import batches, build, evaluate, ladder, load_data, quick_ladder, train_step  # noqa: F401

direction = "maximize"
chance = 0.1  # accuracy of a guess among 10 classes


def search_space(trial):
    return {
        "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        "width": trial.suggest_categorical("width", [8, 16, 32]),
        "momentum": 0.9,
        "label_smoothing": 0.0,
    }
