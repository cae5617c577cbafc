"""Benchmark: what the bench engine costs on this machine.

``simulate``: wall time of ``budgetopt bench simulate`` for 6 methods x 200 paired
repeats x one search of 30 full budgets (the issue's target: <= 60 s), on a committed
table, with ``--jobs`` worker processes, no pool bootstrap.

``build``: seconds per configuration per seed for all unit kinds together, at each
horizon of the cheap study, measured by building a small fresh table (``--configs``
configurations, one seed, one process, one torch thread), and the projected wall time
of a table of 300 configurations x 2 seeds with two processes.

Run::

    python studies/bench_bench.py simulate --table studies/tables/fashion_mlp-short --jobs 2
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


def bench_simulate(table: str, jobs: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        results = simulate(
            table,
            out,
            methods=list(DEFAULT_METHODS),
            compute="30",
            repeats=repeats,
            jobs=jobs,
            pool_bootstrap=0,
            fidelity_resamples=200,
            progress=False,
        )
        seconds = time.perf_counter() - start
    searches = len(DEFAULT_METHODS) * repeats
    print(
        f"simulate: {len(DEFAULT_METHODS)} methods x {repeats} repeats x 30 full budgets on "
        f"{results['table']['configs_complete']} "
        f"configurations, {jobs} process(es): {seconds:.1f} s in all ({results['seconds']:.1f} s of searches, "
        f"{results['seconds'] / searches * 1000 * jobs:.0f} ms per search per process)"
    )


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
    s.add_argument("--repeats", type=int, default=200)
    b = sub.add_parser("build")
    b.add_argument("--configs", type=int, default=6)
    args = parser.parse_args()
    if args.what == "simulate":
        bench_simulate(args.table, args.jobs, args.repeats)
    else:
        bench_build(args.configs)


if __name__ == "__main__":
    main()
