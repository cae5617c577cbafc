"""A table built by workers through an Optuna storage: the speed-up of two workers over
one, and the storage's cost per unit.

    python studies/bench_build_workers.py                      # SQLite in a temporary directory
    python studies/bench_build_workers.py --storage postgresql://user:password@host/db
    python studies/bench_build_workers.py --postgres --skip-speedup  # a private PostgreSQL, fsync on

1. **Speed-up.** A 20-configuration digits table (one seed, kinds restart and branch,
   the script's default ladder: 40 units) is built by one ``budgetopt bench worker``
   process, then again (a new study) by two; each build's time is the span from its
   first unit's start to its last unit's end, as the storage recorded them (process
   start-up and data loading excluded: they are paid once per worker, not per unit).
   Target: two workers on this machine's two cores at least 1.8x faster than one.
2. **Cost per unit.** One worker in this process hands out, trains and records units
   whose training is replaced by a stub returning a fixed row set: every second left
   is the storage's (taking a unit in the ask lock, the heartbeat thread, the rows and
   the trial's state). Measured on a queue of 40 units and of 2,000 (with 1,960 already
   done when the last ones are taken), to show that it does not grow with the table.
   Target: under 5% of a unit of the ``fashion_mlp`` study, whose measured seconds per
   unit are read from table A's ``meta.json`` (this machine): a restart unit (every
   table has one) and the cheapest kind (``branch_cooldown0.1``, a third of it).

Run it on idle cores: other processes on the two cores change figure 1 more than
anything measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
BUILD = dict(configs=20, seeds=1, kinds=["restart", "branch"])


def _span(study: optuna.Study) -> float:
    trials = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds()


def _build_with_workers(url: str, name: str, workers: int) -> float:
    from budgetopt.bench.workers import build_status, enqueue_build

    storage = optuna.storages.RDBStorage(url)
    enqueue_build(storage, name, "digits", **BUILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "budgetopt", "bench", "worker", "--storage", url, "--study", name, "-q"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a worker failed (exit {process.returncode})")
    study = optuna.load_study(study_name=name, storage=storage)
    status = build_status(study)
    assert status.done == status.units and not status.duplicates, status
    return _span(study)


def _storage_cost(url: str, name: str, configs: int, kinds: list[str]) -> tuple[int, float, float]:
    """Units, seconds per unit over all of them, and over the last 40 (the queue almost
    empty, the study holding every trial before them)."""
    import budgetopt.bench.workers as bench_workers
    from budgetopt import workers
    from budgetopt.bench.workers import enqueue_build, run_build_worker

    rdb = workers.heartbeat_options(60, 120, workers.RetryStaleTrial())
    storage = optuna.storages.RDBStorage(url, **rdb)
    plan = enqueue_build(storage, name, "digits", configs=configs, seeds=1, kinds=kinds, ladder="quick")
    rows = "".join(f"0,0,restart,{b},0.5,,{b},0.001,,1,1,1,1,1\n" for b in plan.spec.rungs)
    real = bench_workers.train_unit
    bench_workers.train_unit = lambda spec, unit, params: rows  # the storage's work only
    ends: list[float] = []
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        start = time.perf_counter()
        run_build_worker(study, say=lambda message: ends.append(time.perf_counter()))
        total = time.perf_counter() - start
    finally:
        bench_workers.train_unit = real
    units = len(plan.units)
    last = (ends[-1] - ends[-41]) / 40 if len(ends) > 41 else total / units
    return units, total / units, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", help="an RDB storage URL (default: SQLite in a temporary directory)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a private PostgreSQL cluster (tests/postgres.py, fsync on) and use it"
    )
    parser.add_argument("--skip-speedup", action="store_true", help="only the cost per unit")
    args = parser.parse_args()
    if args.postgres:
        sys.path.insert(0, str(ROOT / "tests"))
        import postgres

        bin_dir = postgres.binaries()
        if bin_dir is None:
            raise SystemExit("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt install postgresql)")
        cluster = postgres.Cluster(bin_dir, fsync=True)
        cluster.start()
        try:
            args.storage = cluster.create_database()
            run(args)
        finally:
            cluster.stop()
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    tmp = tempfile.mkdtemp(prefix="budgetopt-bench-workers-")
    url = args.storage or f"sqlite:///{tmp}/build.db"
    tag = str(int(time.time()))
    print(f"storage: {url.split('@')[-1]}  (os.cpu_count() {os.cpu_count()})")
    if not args.skip_speedup:
        one = _build_with_workers(url, f"one-{tag}", 1)
        two = _build_with_workers(url, f"two-{tag}", 2)
        units = BUILD["configs"] * BUILD["seeds"] * len(BUILD["kinds"])
        print(
            f"digits, {units} units: one worker {one:.1f} s, two workers {two:.1f} s: speed-up {one / two:.2f}x (target >= 1.8x)"
        )
    meta = json.loads((ROOT / "studies/tables/fashion_mlp-short/meta.json").read_text())
    cost = meta["cost_seconds"]
    unit = min(v for k, v in cost.items() if k != "all_kinds")
    restart = cost["restart"]
    for configs, kinds in ((20, ["restart", "branch"]), (500, ["restart", "branch", "continue_cosine", "branch_cooldown0.5"])):
        n, per_unit, last = _storage_cost(url, f"cost-{configs}-{tag}", configs, kinds)
        print(
            f"storage cost per unit, queue of {n}: {per_unit * 1000:.1f} ms (last 40 units {last * 1000:.1f} ms) = "
            f"{100 * per_unit / restart:.1f}% of a fashion_mlp restart unit ({restart:.2f} s), "
            f"{100 * per_unit / unit:.1f}% of its cheapest kind ({unit:.2f} s)  (target < 5%)"
        )


if __name__ == "__main__":
    main()
