"""scikit-learn's digits with the Fashion-MNIST study's CNN and search space: seconds long.

1,797 images of 8x8 (embedded in scikit-learn: no download), split 1,197 / 300 / 300
(:func:`budgetopt.data.load_digits`); batch 32, so an epoch is 37 iterations. The ladder
10 / 30 / 90 / 270 ends after about seven epochs; a full run takes about a second on a
CPU. Used by the tests and as the demo's fallback when Fashion-MNIST is unavailable.
"""

from __future__ import annotations

from budgetopt.data import load_digits, tensor_batches
from budgetopt.studies import fashion_mnist
from budgetopt.studies.fashion_mnist import evaluate, search_space, train_step

__all__ = ["build", "batches", "evaluate", "load_data", "search_space", "train_step"]

direction = "maximize"
ladder = (10, 270, 3)
quick_ladder = (3, 81, 3)
chance = 0.1  # accuracy of a guess among 10 classes
BATCH_SIZE = 32


def load_data(data_dir=None, quick=False):
    return load_digits()


def build(params, device):
    return fashion_mnist.build(params, device, image_size=8)


def batches(data, seed, device):
    return tensor_batches(*data.train, batch_size=BATCH_SIZE, seed=seed, device=device)
