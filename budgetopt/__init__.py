"""budgetopt: budget-aware hyperparameter search for Optuna.

Every trial gets a budget of iterations and a learning rate that decays linearly to
zero at that budget (Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020), so that
successive halving compares models converged for their budget.
"""

from budgetopt._torchvision import ensure_torchvision, repair_torchvision_ops
from budgetopt.frontier import Frontier, FrontierFit, FrontierRow, fit_frontier, frontier, load_model
from budgetopt.ladder import Bracket, Ladder
from budgetopt.modes import MODES
from budgetopt.pruners import BudgetPruner
from budgetopt.run import BudgetedRun, Segment
from budgetopt.samplers import BudgetSampler
from budgetopt.schedules import (
    PROFILES,
    BudgetScheduler,
    TimeBudgetScheduler,
    budget_from_epochs,
    budget_from_fraction,
    get_profile,
)
from budgetopt.study_script import StudyScriptError, load_study_script, make_objective, train_config

# Importing budgetopt has no side effect: it imports no torchvision and registers
# nothing. A CPU-only torch next to PyPI's (CUDA) torchvision is repaired where
# torchvision is needed: the built-in studies that use it, the Lightning integration, a
# study script loaded by path, and budgetopt.ensure_torchvision() in a user's own code.

__version__ = "0.2.0"

__all__ = [
    "MODES",
    "PROFILES",
    "Bracket",
    "BudgetPruner",
    "BudgetSampler",
    "BudgetScheduler",
    "BudgetedRun",
    "Frontier",
    "FrontierFit",
    "FrontierRow",
    "Ladder",
    "Segment",
    "StudyScriptError",
    "TimeBudgetScheduler",
    "budget_from_epochs",
    "budget_from_fraction",
    "ensure_torchvision",
    "repair_torchvision_ops",
    "fit_frontier",
    "frontier",
    "get_profile",
    "load_model",
    "load_study_script",
    "make_objective",
    "train_config",
]
