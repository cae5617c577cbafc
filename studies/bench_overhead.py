"""Overhead of BudgetedRun against a plain loop with torch's own LinearLR (a benchmark).

Times, per training iteration:

- ``plain LinearLR``: ``for t in range(B): step(t); sched.step()`` with
  ``LinearLR(start_factor=1, end_factor=0, total_iters=B)`` over the largest budget B;
- ``BudgetedRun restart, one budget``: the same B iterations driven by BudgetedRun
  (``for segment in run.segments(): for t in segment: ...``), without and with
  ``run.record_loss(loss)``;
- ``BudgetedRun restart`` / ``branch`` over all the budgets, with ``record_loss``:
  the per-iteration cost there includes restoring the initial state (restart) or
  snapshotting and restoring the trunk (branch).

Overhead = (time per iteration) / (plain's time per iteration) - 1; every variant runs
once per repeat, interleaved, and the table shows medians over the repeats. Then it
times branch mode's snapshot + restore of the trunk alone, as a fraction of the time of
the smallest rung (its budget times plain's time per iteration): the cost branch mode
pays at each rung. Evaluation is not timed (every report is a constant).

Models: ``--model quickstart`` (default) is the quickstart CNN on digits batches of 64
(examples/quickstart.py); ``--model resnet18`` is timm's ResNet-18 (10 classes) on
synthetic 3x32x32 batches of 128, CIFAR shapes, e.g. on a GPU::

    python studies/bench_overhead.py
    python studies/bench_overhead.py --threads 1 --clock cpu    # on a shared CPU machine
    python studies/bench_overhead.py --model resnet18 --device cuda --budgets 30 90 270

Goals (issue 2): overhead <= 2% on CPU for the quickstart CNN, <= 1% on GPU for
ResNet-18; snapshot + restore <= 1% of a rung's time.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch import nn

import budgetopt

ROOT = Path(__file__).resolve().parents[1]


def load_quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "examples" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(args) -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The model (on ``args.device``) and the batches to cycle through, already on the device.

    Batches are made before timing so that data loading is not part of either loop.
    """
    if args.model == "quickstart":
        quickstart = load_quickstart()
        x, y, _, _ = quickstart.load_digits_tensors()
        batches = quickstart.Batches(x, y, seed=0)
        data = [batches(t) for t in range(batches.steps_per_epoch * 2)]
        torch.manual_seed(0)
        model = quickstart.DigitsCNN()
    else:
        budgetopt.repair_torchvision_ops()  # timm imports torchvision: CPU-only torch next to PyPI's torchvision
        import timm

        gen = torch.Generator().manual_seed(0)
        data = [
            (torch.randn(128, 3, 32, 32, generator=gen), torch.randint(0, 10, (128,), generator=gen)) for _ in range(8)
        ]
        torch.manual_seed(0)
        model = timm.create_model("resnet18", num_classes=10)
    model = model.to(args.device)
    return model, [(x.to(args.device), y.to(args.device)) for x, y in data]


class Bench:
    """Runs each loop variant from the same initial state and returns its seconds."""

    def __init__(self, args) -> None:
        self.args = args
        # CPU time of this process ignores the time other processes take the cores away:
        # what a shared machine needs (with --threads 1 it counts exactly our work)
        self.clock = time.process_time if args.clock == "cpu" else time.perf_counter
        self.device = torch.device(args.device)
        self.model, self.data = build(args)
        self.initial = {k: v.clone() for k, v in self.model.state_dict().items()}

    def fresh(self) -> torch.optim.Optimizer:
        self.model.load_state_dict(self.initial)
        return torch.optim.SGD(self.model.parameters(), lr=self.args.lr, momentum=0.9, weight_decay=5e-4)

    def step(self, optimizer: torch.optim.Optimizer, t: int) -> torch.Tensor:
        x, y = self.data[t % len(self.data)]
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def plain(self, budget: int) -> float:
        optimizer = self.fresh()
        sched = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=budget)
        self.sync()
        start = self.clock()
        for t in range(budget):
            self.step(optimizer, t)
            sched.step()
        self.sync()
        return self.clock() - start

    def run(self, budgets: list[int], mode: str, record_loss: bool) -> tuple[float, int]:
        optimizer = self.fresh()
        self.sync()
        start = self.clock()
        # building the run is timed: restart snapshots the initial state there
        run = budgetopt.BudgetedRun(budgets, self.model, optimizer, mode=mode)
        for segment in run.segments():
            for t in segment:
                loss = self.step(optimizer, t)
                if record_loss:
                    run.record_loss(loss)
            segment.report(0.0)
        self.sync()
        return self.clock() - start, run.compute

    def machinery(self, iterations: int) -> dict[str, float]:
        """Seconds per iteration of the schedule machinery alone, the training step left out.

        The difference between the loops is the overhead per iteration, free of the noise
        of the training step that the full timings carry on a busy machine.
        """
        out = {}
        optimizer = self.fresh()
        loss = torch.zeros((), device=self.device)
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": no step here
            warnings.simplefilter("ignore")
            for name in ("LinearLR", "BudgetedRun", "BudgetedRun + record_loss"):
                times = []
                for _ in range(self.args.repeats):
                    start = self.clock()
                    if name == "LinearLR":
                        sched = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=iterations)
                        for _ in range(iterations):
                            sched.step()
                    else:
                        run = budgetopt.BudgetedRun([iterations], self.model, optimizer)
                        for segment in run.segments():
                            for _ in segment:
                                if name != "BudgetedRun":
                                    run.record_loss(loss)
                            segment.report(0.0)
                    self.sync()
                    times.append((self.clock() - start) / iterations)
                out[name] = statistics.median(times)
        return out

    def snapshot_restore(self, reps: int = 50) -> float:
        """Median seconds of one branch-mode trunk snapshot plus one restore."""
        optimizer = self.fresh()
        for t in range(3):  # momentum buffers exist, as they do for a real trunk
            self.step(optimizer, t)
        run = budgetopt.BudgetedRun([10, 20], self.model, optimizer, mode="branch")
        times = []
        for _ in range(reps):
            self.sync()
            start = self.clock()
            run._keep_trunk()
            run._restore(run._trunk)
            self.sync()
            times.append(self.clock() - start)
        return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("quickstart", "resnet18"), default="quickstart")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--budgets", type=int, nargs="+", default=None, help="increasing budgets (default 50 150 450; resnet18: 30 90 270)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of every variant; the table shows medians")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall: elapsed time; cpu: this process's CPU time, steadier on a shared machine (use with --threads 1)",
    )
    args = parser.parse_args()
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu counts host CPU time only: time an accelerator with --clock wall")
    if args.threads:
        torch.set_num_threads(args.threads)
    budgets = args.budgets or ([50, 150, 450] if args.model == "quickstart" else [30, 90, 270])
    largest = budgets[-1]

    bench = Bench(args)
    variants = {
        "plain LinearLR": lambda: (bench.plain(largest), largest),
        "BudgetedRun restart, one budget": lambda: bench.run([largest], "restart", record_loss=False),
        "  + record_loss": lambda: bench.run([largest], "restart", record_loss=True),
        "BudgetedRun restart, all budgets": lambda: bench.run(budgets, "restart", record_loss=True),
        "BudgetedRun branch, all budgets": lambda: bench.run(budgets, "branch", record_loss=True),
    }
    for fn in variants.values():  # warm-up: allocator, kernels, first-call costs
        fn()
    per_iter = {name: [] for name in variants}
    compute = {}
    for _ in range(args.repeats):
        for name, fn in variants.items():  # interleaved, so that drift hits every variant
            seconds, compute[name] = fn()
            per_iter[name].append(seconds / compute[name])
    median = {name: statistics.median(v) for name, v in per_iter.items()}
    base = median["plain LinearLR"]

    device = torch.cuda.get_device_name() if bench.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model} on {args.device} ({device}), torch {torch.__version__}, budgets {budgets}, "
          f"{args.clock} clock, median of {args.repeats} repeats")
    print(f"{'variant':<34} {'compute':>7} {'ms/iter':>8} {'overhead':>9}")
    for name in variants:
        overhead = "" if name == "plain LinearLR" else f"{100 * (median[name] / base - 1):+8.2f}%"
        print(f"{name:<34} {compute[name]:>7} {1e3 * median[name]:>8.3f} {overhead:>9}")
    loops = bench.machinery(20_000)
    print("schedule machinery alone, no training step (us/iter): " + ", ".join(f"{k} {1e6 * v:.1f}" for k, v in loops.items()))
    for name in ("BudgetedRun", "BudgetedRun + record_loss"):
        extra = loops[name] - loops["LinearLR"]
        print(f"  {name} - LinearLR = {1e6 * extra:+.1f} us/iter = {100 * extra / base:+.3f}% of a training iteration")
    snap = bench.snapshot_restore()
    rung = budgets[0] * base
    print(f"branch snapshot + restore: {1e3 * snap:.3f} ms = {100 * snap / rung:.3f}% of the smallest rung "
          f"({budgets[0]} iterations, {1e3 * rung:.1f} ms)")


if __name__ == "__main__":
    main()
