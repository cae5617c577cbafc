"""Benchmark: cost of the pruner's decisions and the sampler's suggestions vs study size.

A synthetic objective (no training: a one-parameter model and BudgetedRun's own
bookkeeping) reports rank-consistent noisy values at every rung. Each study is first
filled with N finished trials (their rung values, and the attrs both Optuna's and our
pruners read), then ``--measure`` new trials run through ask/tell while the time spent
in ``pruner.prune`` (per decision) and in the sampler (``study.ask`` plus the
suggestions, per trial) is recorded. Methods, on the same storage:

- ``BudgetPruner`` (one bracket) vs Optuna's ``SuccessiveHalvingPruner``;
- ``BudgetPruner(brackets="hyperband")`` vs Optuna's ``HyperbandPruner``;
- ``BudgetSampler`` (TPE inside) vs plain ``TPESampler``.

Run::

    python studies/bench_pruner.py                       # 1,000 and 10,000 trials, memory + journal
    python studies/bench_pruner.py --sizes 1000 --measure 20
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time

import optuna
import torch
from optuna.trial import TrialState

import budgetopt
from budgetopt.attrs import ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES
from budgetopt.pruners import ATTR_BRACKET

LADDER = dict(min_budget=1, max_budget=27, reduction_factor=3)
RUNGS = budgetopt.Ladder(**LADDER).rungs
DISTRIBUTIONS = {
    "lr": optuna.distributions.FloatDistribution(1e-4, 1, log=True),
    "width": optuna.distributions.IntDistribution(4, 64),
}


def value_at(params: dict, budget: int, rng: random.Random) -> float:
    quality = -((math.log10(params["lr"]) + 1.5) ** 2) - abs(params["width"] - 16) / 64
    return quality - 1 / budget + rng.gauss(0, 0.05)


def prefill(study: optuna.Study, n: int, brackets: list[int], seed: int) -> None:
    """N finished trials, each pruned at a random rung or complete, with the values and
    attrs that both budgetopt's and Optuna's pruners read."""
    rng = random.Random(seed)
    trials = []
    for number in range(n):
        bracket = brackets[number % len(brackets)]
        rungs = RUNGS[bracket:]
        params = {"lr": 10 ** rng.uniform(-4, 0), "width": rng.randint(4, 64)}
        reached = rungs[: rng.randint(1, len(rungs))]
        values = {b: value_at(params, b, rng) for b in reached}
        complete = reached[-1] == rungs[-1]
        trials.append(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE if complete else TrialState.PRUNED,
                value=values[reached[-1]] if complete else None,
                params=params,
                distributions=DISTRIBUTIONS,
                intermediate_values=values,
                user_attrs={
                    ATTR_BRACKET: bracket,
                    ATTR_MODE: "restart",
                    ATTR_PLAN: list(rungs),
                    ATTR_RUNG_VALUES: {str(b): v for b, v in values.items()},
                },
                system_attrs={f"completed_rung_{RUNGS.index(b)}": v for b, v in values.items()},
            )
        )
    study.add_trials(trials)


def measure(storage_kind: str, n: int, sampler: optuna.samplers.BaseSampler, pruner, n_measure: int, seed: int) -> dict:
    storage = None
    if storage_kind == "journal":
        path = tempfile.mktemp(suffix=".log")
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    study = optuna.create_study(direction="maximize", storage=storage, sampler=sampler, pruner=pruner)
    brackets = [b.index for b in pruner.brackets] if isinstance(pruner, budgetopt.BudgetPruner) else [0]
    prefill(study, n, brackets, seed)
    decisions: list[float] = []
    original_prune = pruner.prune

    def timed_prune(study, trial):
        start = time.perf_counter()
        result = original_prune(study, trial)
        decisions.append(time.perf_counter() - start)
        return result

    pruner.prune = timed_prune
    suggestions = []
    rng = random.Random(seed + 1)
    for _ in range(n_measure):
        start = time.perf_counter()
        trial = study.ask()
        params = {"lr": trial.suggest_float("lr", 1e-4, 1, log=True), "width": trial.suggest_int("width", 4, 64)}
        suggestions.append(time.perf_counter() - start)
        model = torch.nn.Linear(1, 1, bias=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"])
        budgets = None if isinstance(pruner, budgetopt.BudgetPruner) else list(RUNGS)
        mode = "restart" if budgets is None else "continue"
        run = budgetopt.BudgetedRun(trial, model, optimizer, budgets=budgets, mode=mode)
        try:
            for segment in run.segments():
                for _ in segment:
                    optimizer.step()
                segment.report(value_at(params, segment.budget, rng))
            study.tell(trial, run.value)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
    return {
        "decision_ms": 1000 * statistics.median(decisions) if decisions else float("nan"),
        "decisions": len(decisions),
        "suggest_ms": 1000 * statistics.median(suggestions),
        "pruner_ms_per_trial": 1000 * sum(decisions) / n_measure,
    }


def methods(seed: int):
    min_b, max_b, eta = LADDER["min_budget"], LADDER["max_budget"], LADDER["reduction_factor"]
    yield "BudgetPruner (SHA)", lambda: (optuna.samplers.RandomSampler(seed=seed), budgetopt.BudgetPruner(**LADDER))
    yield "optuna SuccessiveHalving", lambda: (
        optuna.samplers.RandomSampler(seed=seed),
        optuna.pruners.SuccessiveHalvingPruner(min_resource=min_b, reduction_factor=eta),
    )
    yield "BudgetPruner (hyperband)", lambda: (
        optuna.samplers.RandomSampler(seed=seed),
        budgetopt.BudgetPruner(**LADDER, brackets="hyperband"),
    )
    yield "optuna Hyperband", lambda: (
        optuna.samplers.RandomSampler(seed=seed),
        optuna.pruners.HyperbandPruner(min_resource=min_b, max_resource=max_b, reduction_factor=eta),
    )
    yield "BudgetSampler+BudgetPruner(hb)", lambda: (
        budgetopt.BudgetSampler(seed=seed),
        budgetopt.BudgetPruner(**LADDER, brackets="hyperband"),
    )
    yield "TPESampler+optuna Hyperband", lambda: (
        optuna.samplers.TPESampler(seed=seed),
        optuna.pruners.HyperbandPruner(min_resource=min_b, max_resource=max_b, reduction_factor=eta),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="study sizes (finished trials before measuring)")
    parser.add_argument("--storages", default="memory,journal")
    parser.add_argument("--measure", type=int, default=30, help="new trials timed per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"ladder {RUNGS}, {args.measure} measured trials per cell; medians in ms")
    print("| storage | method | trials | per decision | pruner per trial | sampler per trial |")
    print("|---|---|---:|---:|---:|---:|")
    for storage_kind in args.storages.split(","):
        for name, make in methods(args.seed):
            for n in sizes:
                sampler, pruner = make()
                r = measure(storage_kind, n, sampler, pruner, args.measure, args.seed)
                print(
                    f"| {storage_kind} | {name} | {n:,} | {r['decision_ms']:.2f} | "
                    f"{r['pruner_ms_per_trial']:.2f} | {r['suggest_ms']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
