"""Datasets: the IDX reader, where Fashion-MNIST is found, the splits, the batches."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
import struct
import subprocess
import sys

import pytest
import torch

from budgetopt import data
from budgetopt.data import (
    DEBIAN_FASHION_MNIST,
    find_fashion_mnist,
    load_digits,
    load_fashion_mnist,
    read_idx,
    split_indices,
    tensor_batches,
)

from conftest import require


def idx_bytes(array: torch.Tensor) -> bytes:
    """An IDX file of unsigned bytes (type code 0x08)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    return header + array.to(torch.uint8).numpy().tobytes()


def write_fashion_mnist(directory, n_train=20, n_test=10, compress=gzip.compress, suffix=".gz"):
    """Tiny files with Fashion-MNIST's names and layout: images of constant value = index."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": torch.arange(n_train).view(-1, 1, 1).expand(n_train, 28, 28),
        "train-labels-idx1-ubyte": torch.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": torch.arange(n_test).view(-1, 1, 1).expand(n_test, 28, 28),
        "t10k-labels-idx1-ubyte": torch.arange(n_test) % 10,
    }
    for name, array in arrays.items():
        (directory / (name + suffix)).write_bytes(compress(idx_bytes(array)))
    return directory


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Neither torchvision's root nor Debian's directory holds Fashion-MNIST."""
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path / "empty-root")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")


@pytest.mark.parametrize(
    ("compress", "suffix"), [(gzip.compress, ".gz"), (bz2.compress, ".bz2"), (lzma.compress, ".xz"), (bytes, "")]
)
def test_read_idx_tells_compression_by_content_not_name(tmp_path, compress, suffix):
    array = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    path = tmp_path / "file.gz"  # a misleading name: the first bytes decide
    path.write_bytes(compress(idx_bytes(array)))
    assert torch.equal(read_idx(path), array)


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(b"PK\x03\x04 not idx"))
    with pytest.raises(ValueError, match=r"x\.idx is not an IDX file"):
        read_idx(path)


def test_data_dir_comes_first_and_splits_are_carved_from_train(tmp_path, nowhere):
    directory = write_fashion_mnist(tmp_path / "mine")
    assert find_fashion_mnist(directory) == directory
    splits = load_fashion_mnist(directory, val_size=5)
    (x, y), (vx, vy), (tx, ty) = splits.train, splits.val, splits.test
    assert (len(y), len(vy), len(ty)) == (15, 5, 10)
    assert x.shape == (15, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    # Images are constant (value = index): train and val hold different training images.
    def pixel(images):
        return set((images[:, 0, 0, 0] * data.FASHION_MNIST_STD + data.FASHION_MNIST_MEAN).mul(255).round().int().tolist())

    assert pixel(x) | pixel(vx) == set(range(20)) and not pixel(x) & pixel(vx)
    assert pixel(tx) == set(range(10))
    assert str(directory) in splits.source


def test_torchvision_layout_is_found_uncompressed(tmp_path, nowhere, monkeypatch):
    raw = write_fashion_mnist(tmp_path / "root" / "FashionMNIST" / "raw", compress=bytes, suffix="")
    assert find_fashion_mnist(tmp_path / "root") == raw
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path / "root")
    assert find_fashion_mnist() == raw


def test_missing_data_dir_is_named_in_one_line(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=re.escape(f"data directory {missing} does not exist")) as error:
        load_fashion_mnist(missing)
    assert "\n" not in str(error.value)


def test_nothing_found_without_download_lists_where_it_looked(tmp_path, nowhere):
    with pytest.raises(FileNotFoundError, match=r"Fashion-MNIST not found in .*empty-root, .*no-debian \(and download=False\)"):
        find_fashion_mnist(download=False)


def test_fashion_mnist_from_debian_package():
    require(DEBIAN_FASHION_MNIST.is_dir(), f"{DEBIAN_FASHION_MNIST} is missing: apt-get install dataset-fashion-mnist")
    splits = load_fashion_mnist(DEBIAN_FASHION_MNIST)
    (x, y), (vx, vy), (tx, ty) = splits.train, splits.val, splits.test
    assert x.shape == (50_000, 1, 28, 28) and vx.shape == (10_000, 1, 28, 28) and tx.shape == (10_000, 1, 28, 28)
    assert x.dtype == vx.dtype == tx.dtype == torch.float32
    assert y.dtype == vy.dtype == ty.dtype == torch.long
    assert torch.bincount(torch.cat([y, vy])).tolist() == [6000] * 10  # the 60,000 training images
    assert torch.bincount(ty).tolist() == [1000] * 10
    assert abs(x.mean().item()) < 0.02 and abs(x.std().item() - 1) < 0.02  # normalised
    assert load_fashion_mnist(DEBIAN_FASHION_MNIST) is splits  # loaded once per process


# The digits split as it is today (torch's seeded randperm, SPLIT_SEED): every stored
# digits result was measured on it. A change of seed, of generator, of torch's randperm,
# or a split drawn from the global RNG changes these numbers and fails here.
DIGITS_SPLIT_HEAD = {
    "train": [362, 1568, 1440, 1761, 815, 1792, 508, 660],
    "val": [418, 1000, 1208, 186, 163, 261, 434, 1032],
    "test": [1349, 430, 394, 1643, 1304, 1095, 1659, 395],
}
DIGITS_SPLIT_SHA256 = {"train": "b486c39b3ee8e7fe", "val": "82dbc8367e93ad2f", "test": "2efea24ac6a2c4da"}


def _sha256(indices: torch.Tensor) -> str:
    return hashlib.sha256(indices.numpy().astype("int64").tobytes()).hexdigest()[:16]


def test_digits_have_a_fixed_three_way_split():
    torch.manual_seed(12345)  # the global RNG must not matter
    parts = split_indices(1797, (1197, 300, 300))
    names = ("train", "val", "test")
    assert [len(p) for p in parts] == [1197, 300, 300]
    assert {name: p[:8].tolist() for name, p in zip(names, parts)} == DIGITS_SPLIT_HEAD
    assert {name: _sha256(p) for name, p in zip(names, parts)} == DIGITS_SPLIT_SHA256
    # disjoint and covering: a permutation of range(1797)
    assert sorted(torch.cat(parts).tolist()) == list(range(1797))
    # the same in a fresh process, whatever its global seed
    code = (
        "import torch; from budgetopt.data import split_indices; torch.manual_seed(7); "
        "print(torch.cat(split_indices(1797, (1197, 300, 300))).tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(torch.cat(parts).tolist())

    # load_digits uses exactly these indices of scikit-learn's digits, in this order
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images, target = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16, torch.tensor(digits.target)
    mean, std = images[parts[0]].mean(), images[parts[0]].std()  # the training images' statistics only
    splits = load_digits()
    for (x, y), indices in zip((splits.train, splits.val, splits.test), parts):
        assert torch.equal(y, target[indices]) and y.dtype == torch.long
        assert x.shape == (len(indices), 1, 8, 8) and x.dtype == torch.float32
        assert torch.allclose(x, (images[indices] - mean) / std, atol=1e-6)
    assert set(splits.val[1].tolist()) == set(splits.test[1].tolist()) == set(range(10))


def test_split_sizes_must_add_up():
    with pytest.raises(ValueError, match=r"split sizes \(5, 5\) do not add up to 11 examples"):
        split_indices(11, (5, 5))


def test_tensor_batches_visit_each_example_once_per_epoch():
    x, y = torch.arange(10).float().view(10, 1), torch.arange(10)
    stream = tensor_batches(x, y, batch_size=3, seed=0)
    epoch = [next(stream) for _ in range(3)]  # 3 full batches; the 10th example is dropped
    seen = torch.cat([b[1] for b in epoch]).tolist()
    assert len(seen) == len(set(seen)) == 9
    assert all(torch.equal(bx.view(-1), by.float()) for bx, by in epoch)
    again = tensor_batches(x, y, batch_size=3, seed=0)
    other = tensor_batches(x, y, batch_size=3, seed=1)
    expected = [b[1].tolist() for b in epoch] + [next(stream)[1].tolist() for _ in range(3)]
    assert [next(again)[1].tolist() for _ in range(6)] == expected
    assert [next(other)[1].tolist() for _ in range(3)] != [b[1].tolist() for b in epoch]


def test_tensor_batches_reject_a_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="batch_size must be at most the 4 training examples, got 5"):
        next(tensor_batches(torch.zeros(4, 1), torch.zeros(4), batch_size=5, seed=0))
