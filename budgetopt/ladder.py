"""Ladders and Hyperband brackets: which budgets a trial may reach.

A *ladder* is the list of rung budgets of successive halving,
``min_budget * eta**k`` for k = 0, 1, ... while below ``max_budget``, then
``max_budget`` itself -- the last rung is always the full budget, even when it is not
a power of ``eta`` times the first.

Hyperband (Li et al., JMLR 2018) runs several successive-halving *brackets* on one
ladder: bracket ``b`` starts its trials at rung ``b`` (bracket 0 at the smallest budget,
the most aggressive). With ``s = len(rungs) - 1 - b`` halvings left, bracket ``b`` gets
``ceil((s_max + 1) / (s + 1) * eta**s)`` trials per Hyperband iteration, so each
bracket spends about the same compute.

Nothing here imports Optuna or torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from budgetopt._validation import check_iterations, is_integer
from budgetopt.errors import InputError, InputTypeError


@dataclass(frozen=True)
class Bracket:
    """One Hyperband bracket: the rungs its trials may reach and its share of trials."""

    index: int
    rungs: tuple[int, ...]
    n_trials: int


class Ladder:
    """Rung budgets ``min_budget * reduction_factor**k`` up to ``max_budget``, in iterations.

    Example::

        >>> Ladder(100, 2700, 3).rungs
        (100, 300, 900, 2700)
        >>> Ladder(100, 2000, 3).rungs
        (100, 300, 900, 2000)

    A last step shorter than ``sqrt(reduction_factor)`` (``Ladder(100, 1000, 3)``: 900 ->
    1000) warns: that rung decides almost as late as the full budget.

    Args:
        min_budget: the first rung, an integer >= 1.
        max_budget: the last rung (the full budget), an integer >= ``min_budget``.
        reduction_factor: ``eta``, an integer >= 2: a rung keeps the top 1/eta of the
            trials that reach it, and the next budget is eta times larger.
    """

    def __init__(self, min_budget: int, max_budget: int, reduction_factor: int = 3) -> None:
        self.min_budget = check_iterations(min_budget, "min_budget")
        self.max_budget = check_iterations(max_budget, "max_budget")
        if self.max_budget < self.min_budget:
            raise InputError(
                f"max_budget must be >= min_budget ({self.min_budget}), got max_budget={self.max_budget}"
            )
        if not is_integer(reduction_factor):
            raise InputTypeError(f"reduction_factor must be an integer >= 2, got {reduction_factor!r}")
        if reduction_factor < 2:
            raise InputError(f"reduction_factor must be an integer >= 2, got {reduction_factor!r}")
        self.reduction_factor = int(reduction_factor)
        rungs = []
        budget = self.min_budget
        while budget < self.max_budget:
            rungs.append(budget)
            budget *= self.reduction_factor
        self.rungs: tuple[int, ...] = (*rungs, self.max_budget)
        if rungs and self.max_budget < rungs[-1] * self.reduction_factor**0.5:
            import warnings

            top = rungs[-1] * self.reduction_factor
            warnings.warn(
                f"Ladder({self.min_budget}, {self.max_budget}, {self.reduction_factor}) has rungs "
                f"{', '.join(map(str, self.rungs))}: its last step, {rungs[-1]} -> {self.max_budget}, is "
                f"{self.max_budget / rungs[-1]:.2f}x where the others are {self.reduction_factor}x, so rung "
                f"{rungs[-1]} decides nearly as late as the full budget; a max_budget of "
                f"{rungs[-1]} or {top} (min_budget x reduction_factor**k) gives even steps",
                UserWarning,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"Ladder({self.min_budget}, {self.max_budget}, {self.reduction_factor})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ladder) and other.rungs == self.rungs and other.reduction_factor == self.reduction_factor

    def __hash__(self) -> int:
        return hash((self.rungs, self.reduction_factor))

    def __len__(self) -> int:
        return len(self.rungs)

    def __iter__(self):
        return iter(self.rungs)

    def rung_index(self, budget: int) -> int | None:
        """Index of ``budget`` in the ladder, or None when it is not a rung."""
        try:
            return self.rungs.index(budget)
        except ValueError:
            return None

    def brackets(self, brackets: int | str = 1) -> tuple[Bracket, ...]:
        """The first ``brackets`` Hyperband brackets (``"hyperband"``: all of them).

        ``brackets=1`` is plain successive halving: one bracket starting at the
        smallest budget.
        """
        s_max = len(self.rungs) - 1
        if brackets == "hyperband":
            brackets = s_max + 1
        if not is_integer(brackets):
            raise InputTypeError(f"brackets must be an integer in [1, {s_max + 1}] or 'hyperband', got {brackets!r}")
        if not 1 <= brackets <= s_max + 1:
            raise InputError(
                f"brackets must be in [1, {s_max + 1}] for the ladder {self.rungs} "
                f"(one per rung at most) or 'hyperband', got {brackets!r}"
            )
        return tuple(
            Bracket(
                index=b,
                rungs=self.rungs[b:],
                # ceil((s_max + 1) / (s + 1) * eta**s) in integers: the float product can
                # land just above an exact integer (11 / 9 * 3**8 gives 8020, not 8019).
                n_trials=-(-(s_max + 1) * self.reduction_factor ** (s_max - b) // (s_max - b + 1)),
            )
            for b in range(int(brackets))
        )
