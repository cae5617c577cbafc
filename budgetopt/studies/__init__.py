"""The study scripts that come with budgetopt; each follows :mod:`budgetopt.study_script`.

- ``fashion_mnist``: a small two-layer CNN on Fashion-MNIST, the project's reference study.
- ``fashion_mlp``: an MLP of 1-3 layers on Fashion-MNIST pooled to 14x14, the cheap
  benchmark task; ``fashion_mlp_fixed_lr``: the same without the learning rate.
- ``digits``: the same CNN on scikit-learn's digits, seconds long: tests and demo fallback.
- ``cifar10``: timm's ResNet-18 on CIFAR-10, the study a GPU user runs.

Importing this package registers them by name (``budgetopt.load_study_script("digits")``);
``import budgetopt`` does. The scripts themselves are imported only when loaded.
"""

import pkgutil

from budgetopt.study_script import register_studies

NAMES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))
register_studies({name: f"{__name__}.{name}" for name in NAMES})
