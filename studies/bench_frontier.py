"""How long ``budgetopt.frontier`` takes on a large study in SQLite (target: 1 s at 10,000 trials).

    python studies/bench_frontier.py --trials 10000

Builds a study of ``--trials`` finished restart trials on a four-rung ladder (most pruned
at the first rung, as successive halving leaves them) in a fresh SQLite file, then times
``budgetopt.frontier`` on a freshly loaded study (cold: it reads the attrs it needs with
``budgetopt._optuna.trial_records``' SQL queries), the same on a study whose storage is
not an RDB one as far as the fast path can tell (the public path: Optuna's
``study.get_trials()``, the floor of any caller of Optuna's public API), a second call
on the same ``Study`` object (warm) and ``budgetopt.fit_frontier``, each the best of
``--repeats``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import budgetopt
from budgetopt.attrs import ATTR_COMPUTE, ATTR_MODE, ATTR_PLAN, ATTR_RUNG_VALUES

RUNGS = (30, 90, 270, 810)


def build(url: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    study = optuna.create_study(study_name="big", storage=url, direction="maximize")
    trials = []
    for _ in range(n):
        reached = 1 + int(rng.random() < 1 / 3) + int(rng.random() < 1 / 9) + int(rng.random() < 1 / 27)
        values = {b: float(0.9 - 0.3 * (b / RUNGS[-1]) ** -0.4 * rng.uniform(0.9, 1.3)) for b in RUNGS[:reached]}
        complete = reached == len(RUNGS)
        trials.append(
            create_trial(
                state=TrialState.COMPLETE if complete else TrialState.PRUNED,
                value=values[RUNGS[-1]] if complete else None,
                params={"lr": float(rng.uniform())},
                distributions={"lr": FloatDistribution(0, 1)},
                user_attrs={ATTR_MODE: "restart", ATTR_PLAN: list(RUNGS), ATTR_COMPUTE: sum(RUNGS[:reached]),
                            ATTR_RUNG_VALUES: {str(b): v for b, v in values.items()}},
                intermediate_values=values,
            )
        )
    study.add_trials(trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'big.db'}"
        start = time.perf_counter()
        build(url, args.trials)
        print(f"built {args.trials:,} trials in SQLite in {time.perf_counter() - start:.1f} s")
        best = {"cold": float("inf"), "load": float("inf"), "warm": float("inf"), "fit": float("inf"), "public": float("inf")}

        def timed(key, call):
            start = time.perf_counter()
            out = call()
            best[key] = min(best[key], time.perf_counter() - start)
            return out

        import sys

        frontier_module = sys.modules["budgetopt.frontier"]

        public = {}
        for _ in range(args.repeats):
            timed("load", lambda: optuna.load_study(study_name="big", storage=url).get_trials(deepcopy=False))
            study = optuna.load_study(study_name="big", storage=url)
            front = timed("cold", lambda s=study: budgetopt.frontier(s))
            timed("warm", lambda s=study: budgetopt.frontier(s))
            timed("fit", lambda f=front: budgetopt.fit_frontier(f))
            real = frontier_module.trial_records
            frontier_module.trial_records = lambda *a: None  # as for a storage the SQL path does not know
            try:
                slow = optuna.load_study(study_name="big", storage=url)
                public["front"] = timed("public", lambda s=slow: budgetopt.frontier(s))
            finally:
                frontier_module.trial_records = real
        assert public["front"].to_dict() == front.to_dict(), "the SQL path and the public path disagree"
        n = f"{args.trials:,} trials"
        print(f"frontier(study), cold, at {n}: {best['cold']:.2f} s (best of {args.repeats}; target 1 s)")
        print(f"  the public path (Optuna's get_trials): {best['public']:.2f} s, of which get_trials alone {best['load']:.2f} s")
        print(f"frontier(study), warm (the same Study object again): {best['warm']:.2f} s")
        print(f"fit_frontier (200 bootstrap refits): {best['fit']:.2f} s")


if __name__ == "__main__":
    main()
