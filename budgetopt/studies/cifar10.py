"""CIFAR-10 with timm's ResNet-18: the study a GPU user runs (``--device cuda``).

Model: ``timm.create_model("resnet18", num_classes=10)`` with the usual CIFAR stem: the
7x7 stride-2 convolution and the max-pool, made for 224x224 ImageNet images, are
replaced by one 3x3 stride-1 convolution (He et al., 2016, Section 4.2; kuangliu's
pytorch-cifar), so that the 32x32 images keep their resolution into the first stage.
On CUDA the steps run in bfloat16 autocast.

Data: torchvision's ``CIFAR10`` (``download=True``) under ``data_dir`` or
:data:`budgetopt.data.DATA_ROOT`; 45,000 training images (random crop 32 with padding
4, horizontal flip), 5,000 validation images carved from the training set, 10,000
test images; normalised with the training set's per-channel mean and spread. With
``fake=True`` the same code runs on torchvision's ``FakeData`` at CIFAR shapes (for
tests without the data; ``quick=True`` makes it 64 / 16 / 16 images).

Batch 128: an epoch is 351 iterations; the default ladder 130 / 390 / 1,170 / 3,510 /
10,530 (eta 3) ends at 30 epochs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from budgetopt._torchvision import ensure_torchvision, repair_torchvision_ops
from budgetopt.data import DATA_ROOT, split_indices
from budgetopt.errors import MissingPathError
from budgetopt.study_script import accuracy

repair_torchvision_ops()  # timm imports torchvision: make it load next to a CPU-only torch
import timm  # noqa: E402

direction = "maximize"
ladder = (130, 10530, 3)
quick_ladder = (10, 90, 3)
chance = 0.1  # accuracy of a guess among 10 classes
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
VAL_SIZE = 5000


@dataclass(frozen=True)
class Cifar10:
    train: Dataset  # augmented
    val: Dataset
    test: Dataset
    batch_size: int
    num_workers: int | None  # None: 0 on CPU, up to 8 with CUDA
    source: str


def load_data(data_dir=None, quick=False, fake=False, batch_size=128, num_workers=None):
    tv = ensure_torchvision()
    T = tv.transforms
    normalize = [T.ToTensor(), T.Normalize(MEAN, STD)]
    augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), *normalize])
    plain = T.Compose(normalize)
    if fake:
        n_train, n_test = (64 + 16, 16) if quick else (50_000, 10_000)
        sets = [tv.datasets.FakeData(n_train, (3, 32, 32), 10, transform=t) for t in (augment, plain)]
        test = tv.datasets.FakeData(n_test, (3, 32, 32), 10, transform=plain, random_offset=n_train)
        source = "FakeData at CIFAR-10 shapes"
    else:
        root = Path(data_dir).expanduser() if data_dir is not None else DATA_ROOT
        if data_dir is not None and not root.is_dir():
            raise MissingPathError(f"data directory {root} does not exist")
        try:
            sets = [tv.datasets.CIFAR10(root, train=True, transform=t, download=True) for t in (augment, plain)]
            test = tv.datasets.CIFAR10(root, train=False, transform=plain, download=True)
        except Exception as error:  # URLError, RuntimeError, OSError, ... from the download
            reason = " ".join(str(error).split()) or type(error).__name__
            raise MissingPathError(
                f"CIFAR-10 is not in {root} and could not be downloaded ({reason}); "
                "pass a data directory holding cifar-10-batches-py, or fake=True"
            ) from None
        source = f"CIFAR-10 from {root}"
    n_val = min(VAL_SIZE, len(sets[0]) // 5)
    train, val = split_indices(len(sets[0]), (len(sets[0]) - n_val, n_val))
    return Cifar10(Subset(sets[0], train.tolist()), Subset(sets[1], val.tolist()), test, batch_size, num_workers, source)


def search_space(trial):
    return {
        "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        "momentum": trial.suggest_float("momentum", 0.5, 0.95),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
    }


def resnet18_cifar() -> nn.Module:
    model = timm.create_model("resnet18", num_classes=10)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def build(params, device):
    model = resnet18_cifar().to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=params["lr"], momentum=params["momentum"], weight_decay=params["weight_decay"]
    )
    return model, optimizer


def _loader(data, dataset, device, **kwargs):
    cuda = torch.device(device).type == "cuda"
    workers = data.num_workers if data.num_workers is not None else (min(8, os.cpu_count() or 1) if cuda else 0)
    return DataLoader(dataset, batch_size=data.batch_size, num_workers=workers, pin_memory=cuda, **kwargs)


def batches(data, seed, device):
    loader = _loader(data, data.train, device, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed))
    while True:
        for x, y in loader:
            yield x.to(device, non_blocking=True, memory_format=torch.channels_last), y.to(device, non_blocking=True)


def train_step(model, optimizer, batch, params):
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        loss = nn.functional.cross_entropy(model(x), y, label_smoothing=params["label_smoothing"])
    loss.backward()
    optimizer.step()
    return loss


def evaluate(model, data, split, device):
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda"):
        return accuracy(model, _loader(data, getattr(data, split), device), device)
