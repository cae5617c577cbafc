import os
import sys

import optuna
import pytest
import torch

# Tests train tiny models: one thread each avoids oversubscribing a small CPU.
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
sys.path.insert(0, os.path.dirname(__file__))

IN_CI = os.environ.get("CI") == "true"

# The worker tests' fixture that kills the processes a test started (tests/worker_processes.py).
from worker_processes import no_process_left  # noqa: E402, F401


def require(condition: bool, reason: str) -> None:
    """Skip locally when a real component is missing; under CI=true, fail instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


# -- PostgreSQL: a private cluster for the worker tests (tests/postgres.py) ------------------


@pytest.fixture(scope="session")
def postgres_cluster():
    """A PostgreSQL cluster started for this test session on 127.0.0.1 and a free port;
    stopped at the end (``pg_ctl stop -m fast``), even when a test fails."""
    import shutil

    import postgres

    bin_dir = postgres.binaries()
    require(bin_dir is not None, "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt install postgresql)")
    runuser = shutil.which("runuser") is not None
    require(runuser or os.geteuid() != 0, "running as root needs runuser to start PostgreSQL as another user")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        require(False, "psycopg2 is not installed (pip install 'budgetopt[test]')")
    cluster = postgres.Cluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster):
    """``postgresql+psycopg2://budgetopt:...@127.0.0.1:PORT/test_N``: a fresh database per test."""
    return postgres_cluster.create_database()
