"""ModelPromotionPruner: promotes by the predicted full-budget value, not the rung value."""

import numpy as np
import optuna
import pytest

from budgetopt import BudgetPruner
from budgetopt.promotion import ModelPromotionPruner

RUNGS = (3, 9, 27)


def _history(study, n):
    """Trials whose value at the lowest rung favours small x, and at the full budget large x
    (the horizon flips the ranking, as for the learning rate)."""
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for i in range(n):
        x = (i + 0.5) / n
        trial = optuna.trial.create_trial(
            params={"x": x},
            distributions=distributions,
            value=x,
            intermediate_values={3: 1 - x, 9: 0.5, 27: x},
            state=optuna.trial.TrialState.COMPLETE,
        )
        study.add_trial(trial)


def _decide(pruner, x):
    study = optuna.create_study(direction="maximize", pruner=pruner)
    _history(study, 40)
    study.enqueue_trial({"x": x})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert trial.params == {"x": x}
    trial.report(1 - x, 3)  # its rung value follows the lowest rung's (misleading) trend
    return trial.should_prune()


@pytest.mark.parametrize("x", [0.9, 0.97])
def test_model_promotes_what_the_full_budget_favours_and_the_rung_rule_prunes(x):
    # the plain rule sees 1 - x at the lowest rung: among the worst values, pruned
    assert _decide(BudgetPruner(3, 27, 3), x) is True
    # the model learned that values at 27 grow with x: promoted
    assert _decide(ModelPromotionPruner(3, 27, 3, min_points=30), x) is False


def test_model_falls_back_to_the_rung_rule_with_too_few_points():
    assert _decide(ModelPromotionPruner(3, 27, 3, min_points=10_000), 0.97) is True


def test_forest_predict_equals_scikit_learns_predict():
    from sklearn.ensemble import RandomForestRegressor

    from budgetopt.promotion import forest_predict

    rng = np.random.default_rng(0)
    x = rng.random((300, 5))
    y = x @ rng.random(5) + rng.normal(0, 0.1, 300)
    model = RandomForestRegressor(n_estimators=50, min_samples_leaf=2, random_state=0, n_jobs=1).fit(x, y)
    new = rng.random((40, 5))
    np.testing.assert_allclose(forest_predict(model, new), model.predict(new), rtol=1e-12, atol=1e-12)
