"""How a trial moves from one rung budget to the next: its compute and its branch cooldown.

Three modes (see :class:`~budgetopt.BudgetedRun` for what each trains):

- ``restart``: every budget trained again from the initial state.
  Compute to report ``budgets[k]``: ``budgets[0] + ... + budgets[k]``.
- ``branch``: one constant-rate trunk; budget ``B`` cools down over its last
  ``C(B) = max(1, round(cooldown * B))`` iterations off the trunk, which is restored
  afterwards. Compute: ``budgets[k] + C(budgets[0]) + ... + C(budgets[k-1])``.
- ``continue``: one schedule over the largest budget, reported on the way.
  Compute: ``budgets[k]``.

These formulas are the ones :class:`~budgetopt.BudgetedRun` executes (its tests count
its iterations against them) and the ones the benchmark simulator charges a trial whose
plan differs from the table's (a Hyperband bracket that starts at a higher rung).
Nothing here imports Optuna or torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from budgetopt._validation import check_choice, check_fraction

MODES = ("restart", "branch", "continue")
# Branch mode's cooldown: this fraction of each budget decays to zero (WSD's usual 20%).
COOLDOWN = 0.2


def cooldown_iterations(budget: int, cooldown: float = COOLDOWN) -> int:
    """Iterations of branch mode's cooldown for ``budget``: ``max(1, round(cooldown * budget))``."""
    return max(1, round(check_fraction(cooldown, "cooldown") * budget))


def compute(mode: str, budgets: Sequence[int], k: int | None = None, cooldown: float = COOLDOWN) -> int:
    """Iterations executed, re-done ones included, by a run in ``mode`` over ``budgets``
    once it has reported ``budgets[k]`` (default: the last budget)."""
    check_choice(mode, "mode", MODES)
    k = len(budgets) - 1 if k is None else k
    if not 0 <= k < len(budgets):
        raise ValueError(f"k must index the {len(budgets)} budgets, got {k}")
    if mode == "restart":
        return int(sum(budgets[: k + 1]))
    if mode == "branch":
        return int(budgets[k]) + sum(cooldown_iterations(b, cooldown) for b in budgets[:k])
    return int(budgets[k])
