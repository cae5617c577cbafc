"""The study scripts that come with budgetopt; each follows :mod:`budgetopt.study_script`.

- ``fashion_mnist``: a small two-layer CNN on Fashion-MNIST, the project's reference study.
- ``digits``: the same CNN on scikit-learn's digits, seconds long: tests and demo fallback.
- ``cifar10``: timm's ResNet-18 on CIFAR-10, the study a GPU user runs.
"""
