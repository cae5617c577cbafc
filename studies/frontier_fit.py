"""Is the frontier's fit worth printing? Validated on the committed tables.

    python studies/frontier_fit.py studies/tables/fashion_mlp-short studies/tables/fashion_mlp-long \\
        studies/tables/fashion_mlp_fixed_lr-long studies/tables/fashion_mnist --studies 50 --trials 30

For each table, seed and form (``power``: ``a - b * B**-c``, alone and with the study's
own backtest, as :func:`budgetopt.fit_frontier` runs it by default; ``exponential``:
``a - b * exp(-c * B / B_max)``): ``--studies`` times, draw ``--trials`` configurations of the
pool (a study of that many restart trials, each measured at every rung: a budget-aware
study's values), build the study in memory, take its frontier with
:func:`budgetopt.frontier`, fit :func:`budgetopt.fit_frontier` on every rung but the top
and predict the top rung's frontier value. Printed per table and form: how often the fit
was trusted, the mean absolute error of the prediction (and of the naive "no gain"
prediction, the second-highest rung's value), the median signed error, and the coverage
of the 95% bootstrap interval (the fraction of trusted fits whose interval holds the
actual value; 0.95 is the goal).

A new study, run live rather than drawn from a table:

    python studies/frontier_fit.py --live digits --ladder 10,810,3 --studies 10 --trials 40

runs ``--studies`` real budget-aware Optuna studies of the study script (``BudgetPruner``
on the ladder, restart mode, random sampler with seed i, ``--trials`` trials each: most
pruned at the lower rungs, as a user's study), and fits and scores each frontier the same
way.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from budgetopt import fit_frontier, frontier
from budgetopt.attrs import ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES
from budgetopt.bench.table import read_table


def study_of(table, configs, seed: int) -> optuna.Study:
    study = optuna.create_study(direction=table.meta["direction"])
    k = table.kind_index("restart")
    rungs = list(table.rungs)
    for c in configs:
        values = {b: float(table.value[c, seed, k, r]) for r, b in enumerate(rungs)}
        values = {b: v for b, v in values.items() if math.isfinite(v)}
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE if len(values) == len(rungs) else TrialState.PRUNED,
                value=values.get(rungs[-1]) if len(values) == len(rungs) else None,
                params={"config": float(c)},
                distributions={"config": FloatDistribution(0, len(table.pool))},
                user_attrs={ATTR_MODE: "restart", ATTR_PLAN: rungs, ATTR_RUNG_VALUES: {str(b): v for b, v in values.items()}},
                intermediate_values=values,
            )
        )
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="*", type=Path)
    parser.add_argument("--live", metavar="SCRIPT", help="also run --studies live studies of this study script")
    parser.add_argument("--ladder", default="10,810,3", metavar="MIN,MAX,ETA", help="the live studies' ladder")
    parser.add_argument("--studies", type=int, default=50, help="studies drawn per table and seed (default: %(default)s)")
    parser.add_argument("--trials", type=int, default=30, help="configurations per study (default: %(default)s)")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples per fit (default: %(default)s)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("| table | rungs (fit on / predicted) | form | trusted | mean abs error | naive error | median signed error "
          "| 95% interval coverage |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for directory in args.tables:
        table = read_table(directory)
        configs = table.complete_configs
        rng = np.random.default_rng(0)
        draws = [(seed, rng.choice(configs, size=min(args.trials, len(configs)), replace=False))
                 for seed in range(len(table.seeds)) for _ in range(args.studies)]
        score_fits(f"`{directory.name}`", table.rungs, [frontier(study_of(table, chosen, seed)) for seed, chosen in draws], args)
    if args.live:
        fronts, rungs = live_frontiers(args)
        score_fits(f"`{args.live}`, {args.studies} live studies of {args.trials} trials", rungs, fronts, args)


def live_frontiers(args) -> tuple[list, tuple[int, ...]]:
    from budgetopt import BudgetPruner, Ladder, load_study_script, make_objective

    script = load_study_script(args.live)
    data = script.load_data()
    low, high, eta = (int(x) for x in args.ladder.split(","))
    rungs = Ladder(low, high, eta).rungs
    fronts = []
    for i in range(args.studies):
        study = optuna.create_study(
            direction=script.direction,
            sampler=optuna.samplers.RandomSampler(seed=i),
            pruner=BudgetPruner(low, high, eta),
        )
        study.optimize(make_objective(script, mode="restart", seed=1000 * i, data=data), n_trials=args.trials)
        fronts.append(frontier(study))
    return fronts, rungs


def score_fits(name: str, rungs, fronts, args) -> None:
    for form, backtest in (("power", False), ("power", True), ("exponential", False)):
        errors, naive, covered, trusted = [], [], [], 0
        for i, front in enumerate(fronts):
            actual = front.row(rungs[-1]).value
            fit = fit_frontier(
                front, budgets=rungs[:-1], form=form, bootstrap=args.bootstrap, seed=i, at=[rungs[-1]], backtest=backtest
            )
            if not fit.trusted or actual is None:
                continue
            trusted += 1
            value, low, high = fit.predictions[rungs[-1]]
            errors.append(value - actual)
            naive.append(front.row(rungs[-2]).value - actual)
            covered.append(low <= actual <= high)
        n = len(fronts)
        print(
            f"| {name} | {'/'.join(map(str, rungs[:-1]))} / {rungs[-1]} | {form}"
            f"{' + backtest' if backtest else ''} | {trusted}/{n} | "
            + (f"{np.mean(np.abs(errors)):.4f} | {np.mean(np.abs(naive)):.4f} | {np.median(errors):+.4f} | "
               f"{np.mean(covered):.2f} |" if errors else "— | — | — | — |")
        )


if __name__ == "__main__":
    main()
