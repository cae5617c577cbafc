"""Optuna's own sampler test cases, run against BudgetSampler.

optuna 5.0.0 ships its reusable sampler contract in ``optuna.testing.pytest_samplers``
(the cases Optuna runs against its own samplers): ``BasicSamplerTestCase`` (every
distribution type, step/log bounds, conditional and dynamic spaces, NaN values,
PartialFixedSampler, plain Python return types), ``RelativeSamplerTestCase``
(``sample_relative`` on numerical, categorical and mixed spaces, ``n_jobs=2``) and
``SingleOnlySamplerTestCase`` (``sample_independent`` and ``sample_relative`` raise
``ValueError`` on a multi-objective study). ``MultiObjectiveSamplerTestCase`` is not
run: BudgetSampler is single-objective, as that case's counterpart requires.

A subclass named ``Test*`` makes pytest collect the inherited cases; the ``sampler``
fixture returns a factory, as in Optuna's own suite.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase

import budgetopt

BASES = {
    "tpe": lambda: None,  # BudgetSampler's default base: TPESampler(seed=0)
    "random": lambda: optuna.samplers.RandomSampler(seed=0),
    # Multivariate TPE fitted from the first trial on: the configuration under which
    # ports of Optuna's TPE run RelativeSamplerTestCase.
    "tpe-multivariate": lambda: optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=0),
}


def _factory(base: str):
    return lambda: budgetopt.BudgetSampler(BASES[base](), seed=0)


class TestBudgetSamplerBasic(BasicSamplerTestCase):
    @pytest.fixture(params=sorted(BASES))
    def sampler(self, request):
        return _factory(request.param)


class TestBudgetSamplerRelative(RelativeSamplerTestCase):
    # Only a base sampler that samples relatively: RandomSampler, and TPE before its
    # startup trials or without multivariate, return {} from sample_relative, which
    # this case rejects for those samplers on their own too.
    @pytest.fixture
    def sampler(self):
        return _factory("tpe-multivariate")


class TestBudgetSamplerSingleObjectiveOnly(SingleOnlySamplerTestCase):
    # Every base here supports multi-objective studies itself: BudgetSampler must
    # still refuse them.
    @pytest.fixture(params=sorted(BASES))
    def sampler(self, request):
        return _factory(request.param)


def test_multi_objective_error_names_the_sampler():
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=budgetopt.BudgetSampler(seed=0))
    trial = study.ask()
    with pytest.raises(ValueError, match="multi-objective optimization, BudgetSampler cannot be used"):
        trial.suggest_float("x", 0, 1)
