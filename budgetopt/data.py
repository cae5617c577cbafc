"""Datasets of the built-in studies, loaded once per process into normalised tensors.

Fashion-MNIST (Xiao et al., 2017; 60,000 training and 10,000 test images of 28x28) is
found, in this order:

1. ``data_dir``, when given (the four IDX files in it, or in ``data_dir/FashionMNIST/raw``
   where torchvision puts them); a ``data_dir`` that does not exist is an error;
2. torchvision's layout under :data:`DATA_ROOT` (``DATA_ROOT/FashionMNIST/raw``);
3. Debian's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist``;
4. else torchvision downloads it into ``data_dir`` (or :data:`DATA_ROOT`).

The files are read with :func:`read_idx`, whatever their compression (gzip, bzip2, xz
or none, told by their first bytes, not their name: Debian re-compresses them, so their
checksums are not those torchvision checks). The validation set is carved from the
training set (the last 10,000 of a fixed permutation); the test set is kept apart, for
the final score of a configuration a search picked.

scikit-learn's digits (1,797 images of 8x8, embedded in scikit-learn, no download) get a
fixed train / validation / test split of 1,197 / 300 / 300.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import lzma
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from budgetopt.errors import InputError, MissingPathError

DATA_ROOT = Path(os.environ.get("BUDGETOPT_DATA", Path(torch.hub.get_dir()).parent / "datasets"))
"""Where datasets are looked for and downloaded when no ``data_dir`` is given
(``$BUDGETOPT_DATA``, default ``~/.cache/torch/datasets``)."""

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530  # of the 60,000 training images
SPLIT_SEED = 0  # the fixed permutation every split is carved from

# IDX type codes (http://yann.lecun.com/exdb/mnist/): big-endian element types.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_COMPRESSIONS = ((b"\x1f\x8b", gzip.decompress), (b"BZh", bz2.decompress), (b"\xfd7zXZ\x00", lzma.decompress))


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors: images ``N x C x H x W`` float32, labels int64."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    source: str  # where the data came from, in words

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(getattr(self, name)[1])}" for name in ("train", "val", "test"))
        return f"Splits({sizes}, source={self.source!r})"


def read_idx(path: str | Path) -> torch.Tensor:
    """The array stored in an IDX file (compressed with gzip, bzip2, xz, or not at all)."""
    raw = Path(path).read_bytes()
    for magic, decompress in _COMPRESSIONS:
        if raw.startswith(magic):
            raw = decompress(raw)
            break
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise InputError(f"{path} is not an IDX file (gzip, bzip2, xz or uncompressed); it starts with {raw[:4]!r}")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    array = np.frombuffer(raw, _IDX_TYPES[raw[2]], count=int(np.prod(shape)), offset=4 + 4 * ndim)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="))).reshape(shape)


def _idx_file(directory: Path, name: str) -> Path | None:
    """``directory/name`` or a compressed ``directory/name.<ext>``, if there is one."""
    if (directory / name).is_file():
        return directory / name
    return next(iter(sorted(directory.glob(f"{name}.*"))), None)


def _idx_path(directory: Path, name: str) -> Path:
    path = _idx_file(directory, name)
    if path is None:
        raise MissingPathError(f"{directory} has no {name} (nor a compressed {name}.<ext>)")
    return path


def _fashion_mnist_dir(directory: Path) -> Path | None:
    for candidate in (directory, directory / "FashionMNIST" / "raw"):
        if all(_idx_file(candidate, name) is not None for name in FASHION_MNIST_FILES):
            return candidate
    return None


def find_fashion_mnist(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The directory holding Fashion-MNIST's four IDX files (see the module doc for the order)."""
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise MissingPathError(f"data directory {data_dir} does not exist")
    places = [p for p in (data_dir, DATA_ROOT, DEBIAN_FASHION_MNIST) if p is not None]
    for place in places:
        found = _fashion_mnist_dir(place)
        if found is not None:
            return found
    looked = ", ".join(str(p) for p in places)
    if not download:
        raise MissingPathError(f"Fashion-MNIST not found in {looked} (and download=False)")
    from budgetopt._torchvision import ensure_torchvision

    root = data_dir if data_dir is not None else DATA_ROOT
    try:
        ensure_torchvision().datasets.FashionMNIST(root, download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError, OSError, ...
        reason = " ".join(str(error).split()) or type(error).__name__
        if len(reason) > 80:  # torchvision lists every mirror it tried: the first words say what failed
            reason = reason[:77] + "..."
        raise MissingPathError(
            f"Fashion-MNIST not found in {looked} and the download into {root} failed ({reason}); "
            "install Debian's dataset-fashion-mnist or pass a data directory holding its IDX files"
        ) from None
    return root / "FashionMNIST" / "raw"


def split_indices(n: int, sizes: tuple[int, ...], seed: int = SPLIT_SEED) -> tuple[torch.Tensor, ...]:
    """Consecutive slices of sizes ``sizes`` (summing to ``n``) of a fixed permutation of ``range(n)``."""
    if sum(sizes) != n:
        raise InputError(f"split sizes {sizes} do not add up to {n} examples")
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return permutation.split(list(sizes))


def load_fashion_mnist(data_dir: str | Path | None = None, *, val_size: int = 10_000, download: bool = True) -> Splits:
    """Fashion-MNIST as :class:`Splits`: 50,000 / 10,000 / 10,000 images ``1 x 28 x 28``,
    normalised with the training set's mean and standard deviation. Cached per directory."""
    return _load_fashion_mnist(find_fashion_mnist(data_dir, download).resolve(), val_size)


@functools.lru_cache(maxsize=2)
def _load_fashion_mnist(directory: Path, val_size: int) -> Splits:
    def images(name: str) -> torch.Tensor:
        x = read_idx(_idx_path(directory, name)).unsqueeze(1).float().div_(255)
        return x.sub_(FASHION_MNIST_MEAN).div_(FASHION_MNIST_STD)

    def labels(name: str) -> torch.Tensor:
        return read_idx(_idx_path(directory, name)).long()

    x, y = images(FASHION_MNIST_FILES[0]), labels(FASHION_MNIST_FILES[1])
    train, val = split_indices(len(y), (len(y) - val_size, val_size))
    test = images(FASHION_MNIST_FILES[2]), labels(FASHION_MNIST_FILES[3])
    return Splits(train=(x[train], y[train]), val=(x[val], y[val]), test=test, source=f"Fashion-MNIST from {directory}")


@functools.lru_cache(maxsize=1)
def load_digits() -> Splits:
    """scikit-learn's digits as :class:`Splits` of 1,197 / 300 / 300 images ``1 x 8 x 8`` (pixels
    0..16 scaled to [0, 1] and standardised with the training images' mean and spread)."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target, dtype=torch.long)
    train, val, test = split_indices(len(y), (len(y) - 600, 300, 300))
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return Splits(train=(x[train], y[train]), val=(x[val], y[val]), test=(x[test], y[test]), source="scikit-learn digits")


def tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, device: torch.device | str = "cpu"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(images, labels)`` batches on ``device``: one seeded permutation per epoch,
    the incomplete last batch of each epoch dropped (every step sees ``batch_size`` examples)."""
    if batch_size > len(y):
        raise InputError(f"batch_size must be at most the {len(y)} training examples, got {batch_size}")
    x, y = x.to(device), y.to(device)
    generator = torch.Generator().manual_seed(seed)
    while True:
        for index in torch.randperm(len(y), generator=generator).to(device).split(batch_size):
            if len(index) == batch_size:
                yield x[index], y[index]
