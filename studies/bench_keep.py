"""What keeping models costs (target: at most 2% of a rung's wall time at k=1, on the
``fashion_mnist`` CNN study), and that the model store never holds more than k x rungs
models plus those in flight.

    python studies/bench_keep.py --trials 8 [--full]

Runs a ``fashion_mnist`` study on its quick ladder (9 / 27 / 81 / 243 iterations; with
``--full`` its own, 27 / 81 / 243 / 729, on the full data; one thread) in SQLite with ``BudgetedRun(..., keep_models=1)`` and a
``FileSystemArtifactStore``, and times every :meth:`budgetopt.keep.ModelKeeper.rung` call
(ranking against the study, writing the ``state_dict``, evicting) against the wall time of
the rung it follows (training and evaluation of that segment). After every call it counts
the models in the store.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore

import budgetopt
from budgetopt.keep import ModelKeeper
from budgetopt.study_script import build_seeded, train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="the study's own ladder and data, not the quick ones")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    script = budgetopt.load_study_script("fashion_mnist")
    data = script.load_data(quick=not args.full)
    ladder = script.ladder_for(not args.full)
    shares, keep_seconds, most = [], [], 0
    original = ModelKeeper.rung
    last = {"end": time.perf_counter()}

    def timed(self, budget, value, model):
        start = time.perf_counter()
        rung_seconds = start - last["end"]  # the segment's training and evaluation since the previous rung
        kept = original(self, budget, value, model)
        seconds = time.perf_counter() - start
        keep_seconds.append(seconds)
        shares.append(seconds / rung_seconds)
        nonlocal most
        most = max(most, sum(1 for _ in store_dir.iterdir()))
        last["end"] = time.perf_counter()
        return kept

    ModelKeeper.rung = timed
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "models"
        store_dir.mkdir()
        store = FileSystemArtifactStore(str(store_dir))
        study = optuna.create_study(
            storage=f"sqlite:///{tmp}/keep.db",
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=budgetopt.BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor),
        )

        def objective(trial):
            params = script.search_space(trial)
            model, optimizer = build_seeded(script, params, trial.number, "cpu")
            run = budgetopt.BudgetedRun(trial, model, optimizer, keep_models=args.k, model_store=store)
            last["end"] = time.perf_counter()
            train_run(script, run, params, data, trial.number, "cpu")
            return run.value

        study.optimize(objective, n_trials=args.trials)
        size = sum(p.stat().st_size for p in store_dir.iterdir()) / max(1, sum(1 for _ in store_dir.iterdir()))
    rungs = len(ladder.rungs)
    ladder_name = "full" if args.full else "quick"
    print(
        f"fashion_mnist CNN, {ladder_name} ladder {list(ladder.rungs)}, {args.trials} trials, k={args.k}: "
        f"{len(shares)} rung reports"
    )
    print(f"keeping: median {statistics.median(keep_seconds) * 1000:.1f} ms a rung, {size / 1e6:.2f} MB a model")
    print(f"share of the rung's wall time: median {statistics.median(shares):.2%}, max {max(shares):.2%} (target 2%)")
    print(f"most models in the store at once: {most} (bound k x rungs = {args.k * rungs})")


if __name__ == "__main__":
    main()
