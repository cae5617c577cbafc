"""Benchmark: trials per minute of `budgetopt worker` processes sharing one study.

The objective trains nothing (``tests/scripts/synthetic_study.py``: a step counter and a
smooth score), so what is measured is the cost of a trial in the study machinery
-- storage writes and reads (params, reports, ``budgetopt.*`` user attrs, heartbeats),
the ask lock, ``BudgetSampler`` (TPE) and ``BudgetPruner`` -- not training. Each run
starts W real ``budgetopt worker`` processes (restart mode, ladder 3/9/27, heartbeat
every second on SQL storages) on a fresh study, holds each at its first trial until all
W are in, then times the study from that moment until its N trials are done: process
start-up (importing torch) is left out. The last column is the CPU the worker
processes spent per trial (the database server's is not in it): on a machine with
fewer free cores than workers, trials per minute stop growing with workers while it
stays flat. Storages:

- PostgreSQL: a private cluster started here (``tests/postgres.py``: initdb into a
  temporary directory, 127.0.0.1, fsync off), or ``--postgres URL`` of your own;
- ``JournalFileBackend``: a journal file in a temporary directory.

Run (shares the CPU with whatever else runs: give it the machine, or ``nice`` it)::

    python studies/bench_workers.py                      # 1, 2, 4 workers, 60 trials
    python studies/bench_workers.py --workers 1 8 --trials 100 --postgres postgresql://me:pw@host/db
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "synthetic_study.py"
sys.path.insert(0, str(ROOT / "tests"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, study: str, workers: int, trials: int, tmp: Path) -> tuple[float, float]:
    """Seconds from the release of W held workers until the study has its N trials, and
    the CPU seconds the workers spent in that time."""
    log, gate = tmp / f"{study}.trials", tmp / f"{study}.go"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SYNTHETIC_LOG": str(log), "SYNTHETIC_GATE": str(gate)}
    command = [sys.executable, "-m", "budgetopt", "worker", str(SCRIPT), "--storage", url, "--study", study,
               "--n-trials", str(trials), "--heartbeat", "1", "--snapshots", str(tmp / "snapshots"), "-q"]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while len({line.split()[1] for line in log.read_text().splitlines()} if log.exists() else ()) < workers:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a worker exited early: {[p.returncode for p in processes]}")
            time.sleep(0.05)
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        start = time.perf_counter()
        gate.touch()
        cpu_after = 0.0
        for p in processes:
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            if p.returncode != 0:
                raise RuntimeError(f"a worker failed with status {p.returncode}")
            cpu_after += usage.ru_utime + usage.ru_stime
        return time.perf_counter() - start, cpu_after - cpu_before
    finally:
        for p in processes:
            if p.returncode is None and p.poll() is None:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--trials", type=int, default=60, help="trials per study (default: %(default)s)")
    parser.add_argument("--postgres", help="a PostgreSQL URL to use instead of a private cluster")
    parser.add_argument("--backends", nargs="+", default=["postgresql", "journal"], choices=["postgresql", "journal"])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    cluster = None
    if "postgresql" in args.backends and args.postgres is None:
        import postgres

        cluster = postgres.Cluster(postgres.binaries())
        cluster.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            tmp = Path(tmp)
            for backend in args.backends:
                for workers in args.workers:
                    if backend == "postgresql":
                        url = args.postgres or cluster.create_database()
                    else:
                        url = str(tmp / f"journal-{workers}.log")
                    name = f"bench-{backend}-{workers}-{time.time_ns()}"
                    seconds, cpu = run(url, name, workers, args.trials, tmp)
                    rows.append((backend, workers, args.trials, seconds, cpu))
                    print(f"{backend:10} {workers} workers: {args.trials} trials in {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if cluster is not None:
            cluster.stop()

    load = os.getloadavg()[0]
    print(f"\n{args.trials} trials per study; synthetic objective (no training), restart mode, ladder 3/9/27; "
          f"{os.cpu_count()} CPUs, load average {load:.1f} at the end\n")
    print("| storage | workers | seconds | trials/min | trials/min per worker | worker CPU ms per trial |")
    print("|---|---:|---:|---:|---:|---:|")
    for backend, workers, trials, seconds, cpu in rows:
        rate = 60 * trials / seconds
        print(f"| {backend} | {workers} | {seconds:.1f} | {rate:.0f} | {rate / workers:.0f} | {1000 * cpu / trials:.0f} |")


if __name__ == "__main__":
    main()
