"""ModelPromotionPruner: successive halving that promotes by a surrogate's prediction at the full budget.

A hypothesis to test on benchmark tables (``budgetopt bench simulate ...
--methods budgetopt.promotion:ModelPromotionPruner@restart``), and the same class a user
runs live. Budget-converged values make f(x, B), the score configuration x reaches with
budget B, a smooth function of log B whose optimum in the learning rate drifts with the
horizon (LR* roughly proportional to B^-beta). A model fitted on every rung value seen
so far (inputs: the hyperparameters in Optuna's normalised space and log B) can learn
that drift from trials that reached two rungs; ranking a rung's trials by their
*predicted full-budget value* instead of their value at the rung then corrects the
short-horizon bias of the lowest rungs.

Values read mid-schedule (``continue`` kinds) carry schedule artefacts a model cannot
know; the same rule applies to them unchanged, so a comparison stays fair.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from budgetopt._optuna import search_space_transform
from budgetopt.pruners import BudgetPruner


class ModelPromotionPruner(BudgetPruner):
    """:class:`~budgetopt.BudgetPruner` whose rung decisions rank by a random forest's
    prediction at ``max_budget``.

    At a rung decision with ``k`` values in the trial's bracket and budget, a
    ``sklearn.ensemble.RandomForestRegressor`` fitted on every reported rung value of the
    study (features: the trial's hyperparameters in Optuna's normalised [0, 1] space and
    log B) predicts each of those ``k`` trials' value at ``max_budget``; the trial is
    promoted when its prediction is among the top ``max(1, k // eta)``. While the study
    has fewer than ``min_points`` rung values, or values at fewer than two budgets, the
    plain rule of :class:`~budgetopt.BudgetPruner` decides. The forest is refitted when
    the number of values has grown by ``refit_growth`` since the last fit (a decision
    costs a prediction, not a fit).

    Args: those of :class:`~budgetopt.BudgetPruner`, and
        min_points: rung values needed before the model decides (default 30).
        refit_growth: relative growth of the values that triggers a refit (default 0.1).
        seed: the forest's random state.
    """

    def __init__(self, min_budget: int, max_budget: int, reduction_factor: int = 3, brackets: int | str = 1, *,
                 min_points: int = 30, refit_growth: float = 0.1, seed: int = 0) -> None:
        super().__init__(min_budget, max_budget, reduction_factor, brackets)
        self.min_points = min_points
        self.refit_growth = refit_growth
        self.seed = seed
        self._model = None
        self._fitted_on = 0
        self._transform: Any = None  # optuna's search-space transform, built on the first promotion

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_model"], state["_fitted_on"], state["_transform"] = None, 0, None
        return state

    def _features(self, params: dict, budget: int) -> np.ndarray:
        return np.append(self._transform.transform(params), math.log(budget))

    def _promotion(
        self, study: optuna.Study, trial: FrozenTrial, bracket: int, budget: int, value: float
    ) -> tuple[int, int, bool]:
        better, k, promoted = super()._promotion(study, trial, bracket, budget, value)
        trials = [t for t in study.get_trials(deepcopy=False)
                  if t.state != TrialState.FAIL and t.distributions]
        points = [(t, b, v) for t in trials for b, v in t.intermediate_values.items() if v == v]
        if len(points) < self.min_points or len({b for _, b, _ in points}) < 2:
            return better, k, promoted
        if self._transform is None:
            self._transform = search_space_transform(trial.distributions, transform_0_1=True)
        if self._model is None or len(points) >= self._fitted_on * (1 + self.refit_growth):
            from sklearn.ensemble import RandomForestRegressor

            x = np.array([self._features(t.params, b) for t, b, _ in points])
            y = np.array([v for _, _, v in points])
            self._model = RandomForestRegressor(n_estimators=50, min_samples_leaf=2, random_state=self.seed, n_jobs=1).fit(x, y)
            self._fitted_on = len(points)
        rivals = [t for t in trials if t.number != trial.number and budget in t.intermediate_values
                  and t.intermediate_values[budget] == t.intermediate_values[budget] and self.bracket_of(t) == bracket]
        x = np.array([self._features(t.params, self.ladder.max_budget) for t in [trial, *rivals]])
        predicted = forest_predict(self._model, x)
        if study.direction == optuna.study.StudyDirection.MINIMIZE:
            predicted = -predicted
        better = int((predicted[1:] > predicted[0]).sum())
        k = len(predicted)
        return better, k, better < max(1, k // self.ladder.reduction_factor)


def forest_predict(model, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` of a fitted single-output ``RandomForestRegressor``, the mean
    of its trees' predictions computed directly: the same numbers without the per-call
    overhead of scikit-learn's validation and joblib dispatch (about 17 ms a call for 50
    trees, which made a simulated search spend a third of its time here)."""
    x = np.asarray(x, dtype=np.float32)
    return np.mean([tree.tree_.predict(x).reshape(len(x), -1)[:, 0] for tree in model.estimators_], axis=0)
