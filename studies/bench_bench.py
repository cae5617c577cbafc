"""Benchmark: what the bench engine costs on this machine.

``simulate``: wall time of ``budgetopt bench simulate`` for the 6 default methods (every
method with a random sampler, like with like) x 200 paired repeats x one search of 30
full budgets (issue 18's target: <= 90 s with two processes), on a committed table, with
``--jobs`` worker processes, no pool bootstrap; ``--methods`` times another set (the
defaults before 0.2.0 ran each method's own sampler: TPE in five of six). Then, per
method, a few searches in this process with the simulator workers' faster TPE, and the
share of their time spent inside Optuna's ``TPESampler`` (its ``sample_relative`` and
``sample_independent``, timed here by wrapping them): that share, spread over the
processes, is a floor under the wall time that nothing in budgetopt can lower.

``build``: seconds per configuration per seed for all unit kinds together, at each
horizon of the cheap study, measured by building a small fresh table (``--configs``
configurations, one seed, one process, one torch thread), and the projected wall time
of a table of 300 configurations x 2 seeds with two processes.

Run::

    python studies/bench_bench.py simulate --table studies/tables/fashion_mlp-short --jobs 2
    python studies/bench_bench.py simulate --repeats 0 --per-method 5   # the breakdown only
    python studies/bench_bench.py simulate --methods sha_step,sha_cosine,hyperband_step,restart,branch,tpe
    python studies/bench_bench.py build --configs 6
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import budgetopt  # noqa: F401
from budgetopt.bench.build import build_table, measured_cost
from budgetopt.bench.replay import simulate
from budgetopt.bench.simulate import DEFAULT_METHODS

KINDS = ("restart", "branch", "continue_step", "continue_cosine")


def bench_simulate(table: str, jobs: int, repeats: int, methods: tuple[str, ...] = DEFAULT_METHODS) -> None:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        results = simulate(
            table,
            out,
            methods=list(methods),
            baseline=methods[0],
            compute="30",
            repeats=repeats,
            jobs=jobs,
            pool_bootstrap=0,
            fidelity_resamples=200,
            progress=False,
        )
        seconds = time.perf_counter() - start
    searches = len(methods) * repeats
    print(
        f"simulate: {len(methods)} methods ({', '.join(methods)}) x {repeats} repeats x 30 full budgets on "
        f"{results['table']['configs_complete']} "
        f"configurations, {jobs} process(es): {seconds:.1f} s in all ({results['seconds']:.1f} s of searches, "
        f"{results['seconds'] / searches * 1000 * jobs:.0f} ms per search per process)"
    )


def tpe_share(table: str, per_method: int, jobs: int, repeats: int, methods: tuple[str, ...] = DEFAULT_METHODS) -> None:
    """Per default method: seconds per search of 30 full budgets and those inside Optuna's
    TPESampler, over ``per_method`` repeats in this process (the faster TPE installed, as
    in the simulator's workers); the projected wall time of the whole run and its TPE floor."""
    from optuna.samplers import TPESampler

    from budgetopt._optuna import fast_tpe_patch

    inside = [0.0]

    def timed(function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                inside[0] += time.perf_counter() - start

        return wrapper

    originals = {name: getattr(TPESampler, name) for name in ("sample_relative", "sample_independent")}
    restore = fast_tpe_patch()
    for name, function in originals.items():
        setattr(TPESampler, name, timed(function))
    total = tpe = 0.0
    try:
        for method in methods:
            inside[0] = 0.0
            with tempfile.TemporaryDirectory() as out:
                results = simulate(table, out, methods=[method], baseline=method, compute="30", repeats=per_method,
                                   jobs=1, pool_bootstrap=0, fidelity_resamples=10, progress=False)
            per, per_tpe = results["seconds"] / per_method, inside[0] / per_method
            total, tpe = total + per, tpe + per_tpe
            print(f"  {method}: {per:.2f} s per search, {per_tpe:.2f} s of it in Optuna's TPESampler")
    finally:
        restore()
        for name, function in originals.items():
            setattr(TPESampler, name, function)
    print(f"per repeat of all {len(methods)} methods: {total:.2f} s, {tpe:.2f} s in TPESampler "
          f"({tpe / total:.0%}); {repeats} repeats on {jobs} process(es): about {total * repeats / jobs:.0f} s, "
          f"of which TPESampler alone {tpe * repeats / jobs:.0f} s")


def bench_build(configs: int) -> None:
    for ladder in ("short", "long"):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            build_table(
                "fashion_mlp", Path(out) / "t", configs=configs, seeds=1, kinds=KINDS, ladder=ladder, jobs=1, progress=False
            )
            seconds = time.perf_counter() - start
            cost = measured_cost(Path(out) / "t")
        per = cost["all_kinds"]
        print(
            f"build fashion_mlp --ladder {ladder}: {per:.2f} s per configuration per seed for {', '.join(KINDS)} "
            f"({', '.join(f'{k} {cost[k]:.2f}' for k in KINDS)}); {configs} configurations in {seconds:.0f} s; "
            f"300 x 2 seeds with --jobs 2: about {300 * 2 * per / 2 / 60:.0f} min"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("simulate")
    s.add_argument("--table", default="studies/tables/fashion_mlp-short")
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--repeats", type=int, default=200, help="repeats of the timed run (0: the breakdown only)")
    s.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="methods timed (default: the default set)")
    s.add_argument("--per-method", type=int, default=3, help="repeats per method of the TPE breakdown (0: none)")
    b = sub.add_parser("build")
    b.add_argument("--configs", type=int, default=6)
    args = parser.parse_args()
    if args.what == "simulate":
        methods = tuple(m for m in args.methods.split(",") if m)
        if args.repeats:
            bench_simulate(args.table, args.jobs, args.repeats, methods)
        if args.per_method:
            tpe_share(args.table, args.per_method, args.jobs, args.repeats or 200, methods)
    else:
        bench_build(args.configs)


if __name__ == "__main__":
    main()
