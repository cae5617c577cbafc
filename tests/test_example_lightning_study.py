"""End to end: examples/lightning_study.py, in a fast configuration."""

import importlib.util
import os
import subprocess
import sys

import optuna
import pytest

from conftest import IN_CI

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "lightning_study.py")

if importlib.util.find_spec("lightning") is None:
    if IN_CI:
        raise ImportError("required in CI: lightning (pip install 'budgetopt[lightning]')")
    pytest.skip("lightning is not installed (pip install 'budgetopt[lightning]')", allow_module_level=True)


@pytest.mark.long  # a Lightning study end to end, 7 s: run by CI with -m long
def test_lightning_example_runs_a_budget_aware_study_and_prints_its_frontier(tmp_path):
    url = f"sqlite:///{tmp_path}/lightning.db"
    result = subprocess.run(
        [sys.executable, EXAMPLE, "--trials", "4", "--storage", url], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best trial #" in result.stdout and "budget   19:" in result.stdout
    assert "Warning" not in result.stderr, result.stderr[-2000:]
    study = optuna.load_study(study_name="digits-lightning", storage=url)
    assert len(study.trials) == 4
    assert study.user_attrs["budgetopt.ladder"]["rungs"] == [19, 57, 171]
    best = study.best_trial
    assert best.user_attrs["budgetopt.compute"] == 19 + 57 + 171  # restart: the sum of its budgets
    assert best.value > 0.5  # far above chance (0.1)
