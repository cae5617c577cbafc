"""The GPU check: what BudgetedRun costs and what works on this machine's accelerator, one table.

    python studies/gpu_check.py                      # the first CUDA GPU (about 5 minutes on an H100/H200)
    python studies/gpu_check.py --device cpu --quick # the same checks, small, on the CPU (its own test)

For the ``fashion_mnist`` study's CNN (28x28, one channel) and timm's ResNet-18 with the
CIFAR stem (32x32; ``budgetopt.studies.cifar10``), on synthetic batches already on the
device (the data pipeline is not what is measured), each training variant runs the same
number of optimizer steps twice, alternately, and keeps each side's best:

- ``bare``: the loop a user writes without budgetopt: SGD with momentum and torch's own
  ``LinearLR`` decay, no loss checks;
- ``budgeted``: the same steps through ``BudgetedRun`` in restart mode over three budgets
  (the initial state restored at each, ``record_loss`` every step, one value reported per
  budget), so the ratio includes everything a budget-aware trial adds.

Variants: ``fp32``; ``bf16`` (``torch.autocast``); ``fp16`` with ``torch.amp.GradScaler``
(handed to ``BudgetedRun(grad_scaler=...)``); ``channels_last`` (fp32); ``compile``
(``torch.compile``, inductor, fp32), with the graphs compiled while the budgeted run
crossed its budgets counted (a restored state must not recompile: target 0). Target for
every ratio: budgeted/bare throughput at least 0.99. Then, per model with AdamW state, the
time of a snapshot and a restore (what a branch cooldown does) kept on the device and with
``snapshot_device="cpu"`` (through pinned memory).

A variant the device cannot run (e.g. fp16 or compile without a C++ compiler on a CPU) is
reported as skipped with the error's first line, never silently dropped. The script exits
1 when any check errors, 0 otherwise; targets missed are marked in the table, not errors.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import budgetopt  # noqa: F401
from budgetopt import BudgetedRun
from budgetopt.studies.cifar10 import resnet18_cifar
from budgetopt.studies.fashion_mnist import small_cnn

TARGET_RATIO = 0.99
VARIANTS = ("fp32", "bf16", "fp16", "channels_last", "compile")


@dataclass
class Row:
    model: str
    check: str
    figure: str
    note: str = ""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def models(quick: bool) -> dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int, list[int]]]:
    """Each model's builder, input shape, batch and budgets (``quick``: small enough for a CPU
    test; the ResNet at full CIFAR resolution takes about 0.1 s a sample there)."""
    return {
        "cnn": (lambda: small_cnn(32, 28), (1, 28, 28), *((16, [2, 4, 8]) if quick else (128, [100, 200, 400]))),
        "resnet18": (resnet18_cifar, (3, 32, 32), *((2, [1, 2, 4]) if quick else (128, [50, 100, 200]))),
    }


class Trainer:
    """One model in one variant: a forward/backward/step on a fixed synthetic batch."""

    def __init__(self, build: Callable[[], nn.Module], shape: tuple[int, ...], variant: str, device: torch.device,
                 batch: int) -> None:
        torch.manual_seed(0)
        self.device, self.variant = device, variant
        self.model = build().to(device)
        self.x = torch.randn(batch, *shape, device=device)
        self.y = torch.randint(0, 10, (batch,), device=device)
        if variant == "channels_last":
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if variant == "compile" else self.model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.scaler = torch.amp.GradScaler(device.type) if variant == "fp16" else None
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(variant)
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext

    def step(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = nn.functional.cross_entropy(self.forward(self.x), self.y)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss

    def bare(self, steps: int) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = 0.05
        scheduler = torch.optim.lr_scheduler.LinearLR(self.optimizer, 1.0, 0.0, total_iters=steps)
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
            scheduler.step()
        sync(self.device)
        return steps / (time.perf_counter() - start)

    def budgeted(self, budgets: list[int]) -> tuple[float, int]:
        for group in self.optimizer.param_groups:
            group["lr"] = 0.05
        run = BudgetedRun(budgets, self.model, self.optimizer, mode="restart", grad_scaler=self.scaler)
        graphs = compiled_graphs()
        sync(self.device)
        start = time.perf_counter()
        for segment in run.segments():
            loss = None
            for _ in segment:
                loss = self.step()
                run.record_loss(loss)
            segment.report(-float(loss.detach()))  # a value per budget: one sync, as an evaluation would
        sync(self.device)
        return run.compute / (time.perf_counter() - start), compiled_graphs() - graphs


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process (dynamo's counter; a study script may
    read it, the library does not)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def throughput(name: str, build, shape, variant: str, device: torch.device, batch: int, budgets: list[int],
               rounds: int) -> Row:
    try:
        trainer = Trainer(build, shape, variant, device, batch)
        steps = sum(budgets)
        trainer.bare(max(3, budgets[0]))  # warm up (compiles, cuDNN autotune) before timing
        bare, budgeted, recompiled = 0.0, 0.0, 0
        for _ in range(rounds):
            bare = max(bare, trainer.bare(steps))
            speed, graphs = trainer.budgeted(budgets)
            budgeted, recompiled = max(budgeted, speed), recompiled + graphs
    except Exception as error:  # a variant this device cannot run: say which and why
        return Row(name, variant, "skipped", f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120]}")
    ratio = budgeted / bare
    note = f"bare {bare:,.1f} it/s, budgeted {budgeted:,.1f} it/s"
    if variant == "compile":
        note += f"; graphs compiled across budgets: {recompiled} (target 0)"
    mark = "" if ratio >= TARGET_RATIO else f"  BELOW {TARGET_RATIO}"
    return Row(name, variant, f"{ratio:.3f}{mark}", note)


def snapshots(name: str, build, shape, device: torch.device, repeats: int) -> list[Row]:
    torch.manual_seed(0)
    model = build().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    nn.functional.cross_entropy(model(torch.randn(2, *shape, device=device)), torch.tensor([0, 1], device=device)).backward()
    optimizer.step()  # AdamW's moments exist from here on
    size = sum(p.numel() * p.element_size() for p in model.parameters()) * 3 / 2**20
    rows = []
    for place in ([None] if device.type == "cpu" else [None, "cpu"]):
        run = BudgetedRun([10, 20], model, optimizer, mode="branch", snapshot_device=place)
        taken, restored = float("inf"), float("inf")
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            state = run._state()
            sync(device)
            taken = min(taken, time.perf_counter() - start)
            start = time.perf_counter()
            run._restore(state)
            sync(device)
            restored = min(restored, time.perf_counter() - start)
        where = "on the model's device" if place is None else "snapshot_device='cpu'"
        rows.append(Row(name, f"snapshot {where}", f"{taken * 1e3:.1f} ms",
                        f"restore {restored * 1e3:.1f} ms; model + AdamW state {size:.0f} MiB"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the accelerator to check (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="small batches and budgets (the CPU test)")
    parser.add_argument("--models", default="cnn,resnet18", help="comma-separated, of cnn (the fashion_mnist "
                        "study's), resnet18 (timm's, CIFAR stem, 32x32) (default: %(default)s)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device must be a torch device such as cuda, cuda:1 or cpu, got {args.device!r}")
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    chosen = args.models.split(",")
    unknown = [m for m in chosen if m not in models(False)]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; allowed: {', '.join(models(False))}")
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device}: no CUDA GPU is visible on this machine", file=sys.stderr)
        return 1
    rounds = 1 if args.quick else 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    print(f"budgetopt gpu_check: {name}; torch {torch.__version__}; target ratio >= {TARGET_RATIO}", flush=True)
    rows: list[Row] = []
    for model_name, (build, shape, batch, budgets) in models(args.quick).items():
        if model_name not in chosen:
            continue
        print(f"{model_name}: batch {batch}, budgets {budgets} (restart: {sum(budgets)} steps a run)", flush=True)
        for variant in variants:
            rows.append(throughput(model_name, build, shape, variant, device, batch, budgets, rounds))
            print(f"  {model_name}, {variant}: {rows[-1].figure}", file=sys.stderr, flush=True)
        rows += snapshots(model_name, build, shape, device, 3 if args.quick else 5)
    width = max(len(r.check) for r in rows)
    print(f"\n{'model':<9}  {'check':<{width}}  {'budgeted/bare':<15}  note")
    for r in rows:
        print(f"{r.model:<9}  {r.check:<{width}}  {r.figure:<15}  {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
