"""End to end: examples/optuna_study.py, in a fast configuration."""

import os
import subprocess
import sys

import optuna

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "optuna_study.py")


def test_optuna_study_example_runs_and_stores_a_budget_aware_study(tmp_path):
    url = f"sqlite:///{tmp_path}/example.db"
    result = subprocess.run(
        [sys.executable, EXAMPLE, "--trials", "8", "--storage", url], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "best trial #" in result.stdout and f"budgetopt dashboard {url}" in result.stdout
    study = optuna.load_study(study_name="digits-budget-aware", storage=url)
    assert len(study.trials) == 8
    best = study.best_trial
    assert best.user_attrs["budgetopt.plan"] == [10, 30, 90, 270]
    assert best.user_attrs["budgetopt.compute"] == 400  # restart: the sum of the budgets
    assert best.value > 0.5  # a trained CNN, far above chance (0.1)
    assert study.user_attrs["budgetopt.ladder"]["rungs"] == [10, 30, 90, 270]
