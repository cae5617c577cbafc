"""Helpers of the worker tests: start `budgetopt worker` processes on the synthetic study
script, wait for them with a timeout, open the storages they share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from budgetopt import BudgetPruner, BudgetSampler

SCRIPT = str(Path(__file__).parent / "scripts" / "synthetic_study.py")
LADDER = dict(min_budget=3, max_budget=27, reduction_factor=3)  # the synthetic script's
HEARTBEAT = ["--heartbeat", "1", "--grace-period", "3"]  # short, so a dead worker is noticed fast


def open_storage(url: str) -> optuna.storages.BaseStorage:
    if url.endswith(".log"):
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
    return optuna.storages.RDBStorage(url)


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url), sampler=BudgetSampler(), pruner=BudgetPruner(**LADDER))


_started: list[subprocess.Popen] = []


@pytest.fixture
def no_process_left():
    """Kills, at the end of the test, every process it started that still runs."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def start(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """A process (killed by ``no_process_left`` if still running); stderr to a file in cwd."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    log = open(cwd / f"process-{time.monotonic_ns()}.err", "w")
    process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=log, text=True)
    process.stderr_path = log.name
    log.close()
    _started.append(process)
    return process


def start_worker(url: str, study: str, *options: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """A `budgetopt worker` process on the synthetic study script."""
    return start([sys.executable, "-m", "budgetopt", "worker", SCRIPT, "--storage", url, "--study", study, *options], cwd, env)


def stderr_of(process: subprocess.Popen) -> str:
    return Path(process.stderr_path).read_text()


def wait_all(processes: list[subprocess.Popen], timeout: float) -> list[int]:
    """Exit statuses; on timeout every process still running is killed and the test fails."""
    deadline = time.monotonic() + timeout
    try:
        for p in processes:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for p in processes:
            if p.poll() is None:
                p.kill()
        stderr = " | ".join(stderr_of(p)[-500:] for p in processes)
        raise AssertionError(f"workers still running after {timeout} s: {stderr}") from None
    return [p.returncode for p in processes]


def read_log(path: Path) -> list[tuple[int, int]]:
    """The (trial number, pid) lines the synthetic script's search_space wrote."""
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines() if line.strip()]


def wait_until(condition, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
