"""Overhead of budgetopt's Lightning callback against the same Lightning loop with LinearLR (a benchmark).

Two ``Trainer.fit`` runs of B optimizer steps of the quickstart CNN on digits batches of
64 (examples/quickstart.py), identical but for the learning rate:

- ``LinearLR``: ``configure_optimizers`` returns SGD and ``LinearLR(start_factor=1,
  end_factor=0, total_iters=B)`` stepped every step (``interval="step"``),
  ``max_steps=B``, validation once, after step B (``val_check_interval=B``);
- ``BudgetPruningCallback``: SGD alone, and ``BudgetPruningCallback([B],
  monitor="val_acc")`` (restart mode, one budget: linear decay to 0 at B), which sets
  the rate of every step, runs the validation after step B and stops the Trainer.

Timed: the training loop, from ``on_train_start`` to ``on_train_end``, less the time of
the validation; batches are built before timing (a list of tensors), so data loading is
in neither loop. Both variants run once per repeat, interleaved; the figures are
medians over the repeats. Overhead = callback's time per step / LinearLR's - 1.

The difference of two loop timings is noisy on a shared machine, so the script also
times, in separate runs, what each variant adds to a step: the median call of each of
the callback's per-step hooks (``on_train_batch_start``, ``on_train_batch_end`` and the
validation check the epoch loop asks it), and the median call of the LightningModule's
``lr_scheduler_step`` by which Lightning steps LinearLR. Their difference is the
callback's overhead per step, free of the training step's noise::

    python studies/bench_lightning.py                          # 450 steps, 7 repeats
    python studies/bench_lightning.py --threads 1 --clock cpu  # steadier on a shared CPU machine

Goal (issue 13): overhead <= 1% of a training step on CPU for this model.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch import nn

import budgetopt  # noqa: F401

# the integration first: it makes torchvision, which lightning imports, load next to a CPU-only torch
BudgetPruningCallback = importlib.import_module("budgetopt.integration.lightning").BudgetPruningCallback
L = importlib.import_module("lightning.pytorch")

ROOT = Path(__file__).resolve().parents[1]
PER_STEP_HOOKS = ("on_train_batch_start", "on_train_batch_end", "_should_validate")


def load_quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Prebuilt:
    """Batches built before timing, re-iterable: one pass is an epoch (a plain list would be
    taken by Lightning for a list of dataloaders)."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class LitCNN(L.LightningModule):
    def __init__(self, net: nn.Module, lr: float, linear_lr_steps: int | None) -> None:
        super().__init__()
        self.net, self.lr, self.linear_lr_steps = net, lr, linear_lr_steps

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.net.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        if self.linear_lr_steps is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=self.linear_lr_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class LoopClock(L.Callback):
    """Seconds of the training loop, validation excluded (first in the callback list)."""

    def __init__(self, clock) -> None:
        self.clock, self.validation, self.seconds = clock, 0.0, 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = self.clock()

    def on_validation_start(self, trainer, pl_module) -> None:
        self.validation_start = self.clock()

    def on_validation_end(self, trainer, pl_module) -> None:
        self.validation += self.clock() - self.validation_start

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = self.clock() - self.start - self.validation


def time_hooks(obj, names: tuple[str, ...]) -> dict[str, list[float]]:
    """Wrap hooks of a callback or a LightningModule (instance attributes shadow the methods
    Lightning looks up) to record the seconds of every call; each is called once per step."""
    calls: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        method = getattr(obj, name)

        def timed(*args, _method=method, _seconds=calls[name].append, **kwargs):
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                _seconds(time.perf_counter() - start)

        setattr(obj, name, timed)
    return calls


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.clock = time.process_time if args.clock == "cpu" else time.perf_counter
        quickstart = load_quickstart()
        x, y, x_test, y_test = quickstart.load_digits_tensors()
        batches = quickstart.Batches(x, y, seed=0)
        self.train = Prebuilt([batches(t) for t in range(batches.steps_per_epoch * 2)])
        self.val = Prebuilt([(x_test, y_test)])
        torch.manual_seed(0)
        self.net = quickstart.DigitsCNN()
        self.initial = {k: v.clone() for k, v in self.net.state_dict().items()}

    def fit(self, variant: str, hooks: dict | None = None) -> float:
        """Seconds per step of one fit; with ``hooks``, extend its lists with the seconds of
        every call of the variant's per-step hooks (the callback's, or LinearLR's step)."""
        steps = self.args.steps
        self.net.load_state_dict(self.initial)
        loop = LoopClock(self.clock)
        options = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        options.update(accelerator="cpu", devices=1, num_sanity_val_steps=0)
        if variant == "LinearLR":
            model = LitCNN(self.net, self.args.lr, linear_lr_steps=steps)
            calls = time_hooks(model, ("lr_scheduler_step",)) if hooks is not None else None
            trainer = L.Trainer(
                callbacks=[loop], max_steps=steps, check_val_every_n_epoch=None, val_check_interval=steps, **options
            )
        else:
            model = LitCNN(self.net, self.args.lr, linear_lr_steps=None)
            callback = BudgetPruningCallback([steps], monitor="val_acc")
            calls = time_hooks(callback, PER_STEP_HOOKS) if hooks is not None else None
            trainer = L.Trainer(callbacks=[loop, callback], max_epochs=-1, **options)
        trainer.fit(model, self.train, self.val)
        assert trainer.global_step == steps, trainer.global_step
        if hooks is not None and calls is not None:
            for name, seconds in calls.items():
                hooks.setdefault(name, []).extend(seconds)
        return loop.seconds / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=450, help="optimizer steps per fit (default 450: quickstart's last budget)")
    parser.add_argument("--repeats", type=int, default=7, help="timed fits of each variant; the figures are medians")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, steadier on a shared machine (use with --threads 1)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", ".*LeafSpec.*", FutureWarning)

    bench = Bench(args)
    variants = ("LinearLR", "BudgetPruningCallback")
    for variant in variants:  # warm-up: allocator, first-call costs
        bench.fit(variant)
    per_step: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:  # interleaved, so that drift hits both
            per_step[variant].append(bench.fit(variant))
    median = {v: statistics.median(times) for v, times in per_step.items()}
    base = median["LinearLR"]
    calls: dict[str, list[float]] = {}
    for _ in range(max(3, args.repeats // 2)):
        bench.fit("BudgetPruningCallback", calls)
        bench.fit("LinearLR", calls)

    print(f"quickstart CNN on CPU ({torch.get_num_threads()} threads), torch {torch.__version__}, lightning {L.__version__}, "
          f"{args.steps} steps per fit, {args.clock} clock, median of {args.repeats} repeats")
    print(f"{'variant':<24} {'ms/step':>8} {'overhead':>9}   (min..max ms/step)")
    for variant in variants:
        overhead = "" if variant == "LinearLR" else f"{100 * (median[variant] / base - 1):+8.2f}%"
        low, high = min(per_step[variant]), max(per_step[variant])
        print(f"{variant:<24} {1e3 * median[variant]:>8.3f} {overhead:>9}   ({1e3 * low:.3f}..{1e3 * high:.3f})")
    # the median call is a hook's cost; the mean adds the calls a busy machine preempted
    median_calls = {name: statistics.median(seconds) for name, seconds in calls.items()}
    hooks = sum(median_calls[name] for name in PER_STEP_HOOKS)
    linear = median_calls["lr_scheduler_step"]
    detail = ", ".join(f"{name} {1e6 * median_calls[name]:.1f}" for name in PER_STEP_HOOKS)
    print(f"callback's per-step hooks: {1e6 * hooks:.1f} us/step ({detail}); LinearLR's lr_scheduler_step: {1e6 * linear:.1f} us")
    print(f"callback's overhead per step: {1e6 * (hooks - linear):+.1f} us = {100 * (hooks - linear) / base:+.2f}% of a step "
          f"({1e3 * base:.3f} ms; median calls over {len(calls['lr_scheduler_step'])} steps)")


if __name__ == "__main__":
    main()
