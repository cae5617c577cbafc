"""The study scripts that come with budgetopt; each follows :mod:`budgetopt.study_script`.

- ``fashion_mnist``: a small two-layer CNN on Fashion-MNIST, the project's reference study.
- ``fashion_mlp``: an MLP of 1-3 layers on Fashion-MNIST pooled to 14x14, the cheap
  benchmark task; ``fashion_mlp_fixed_lr``: the same without the learning rate.
- ``digits``: the same CNN on scikit-learn's digits, seconds long: tests and demo fallback.
- ``cifar10``: timm's ResNet-18 on CIFAR-10, the study a GPU user runs.

They load by name (``budgetopt.load_study_script("digits")``): the names are this
package's modules, found by their files when asked
(:func:`budgetopt.study_script.builtin_studies`); nothing is registered, and a script is
imported only when loaded.
"""
