"""Budget-aware learning-rate schedules.

A *profile* is a pure function of progress ``p = t / T`` in [0, 1] that returns the
multiplier of the peak learning rate. :class:`BudgetScheduler` turns a profile and a
budget of ``T`` iterations into a torch ``LRScheduler``; :class:`TimeBudgetScheduler`
does the same with progress measured in wall-clock seconds over a deadline.

The off-by-one choice, the same for every profile: the ``t``-th optimizer step
(0-based) trains with ``lr0 * profile(t / T)``. The first step uses the peak rate, the
last (``t = T - 1``) uses ``profile((T - 1) / T)`` -- ``lr0 / T`` for ``linear`` -- and
after the T-th ``scheduler.step()`` the optimizer holds ``lr0 * profile(1)``, which is
exactly 0 for ``linear``, ``cosine``, ``rex``, ``sqrt`` and ``wsd``. No step is spent at rate 0,
and a scheduler stepped past its budget holds its end value.

Warmup (``warmup=W`` iterations, any profile): step ``t < W`` trains with
``lr0 * (t + 1) / (W + 1)`` (nanoGPT's ramp), and the profile then runs over the
remaining ``T - W`` iterations, ``p = (t - W) / (T - W)``.

Nothing here imports Optuna.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from budgetopt._validation import check_choice, check_fraction, check_iterations, is_real
from budgetopt.errors import InputError, InputTypeError

Profile = Callable[[float], float]


def linear(p: float) -> float:
    """``1 - p``: linear decay to exactly 0 at the budget (Li et al., 2020). The default."""
    return 1.0 - p


def step(p: float, milestones: tuple[float, ...] = (0.5, 0.75), gamma: float = 0.1) -> float:
    """``gamma ** (number of milestones <= p)``: budget-scaled step decay.

    The milestones are fractions of the budget; the default x0.1 at 50% and 75% is the
    classic CIFAR ResNet schedule (He et al., 2016), scaled to the budget. Ends at
    ``gamma ** len(milestones)`` (0.01 by default), not 0.
    """
    return gamma ** sum(1 for m in milestones if p >= m)


def cosine(p: float) -> float:
    """``0.5 * (1 + cos(pi * p))``: cosine annealing to 0 (Loshchilov & Hutter, 2017)."""
    return 0.5 * (1.0 + math.cos(math.pi * p))


def exp(p: float, end: float = 1e-3) -> float:
    """``end ** p``: exponential decay from 1 to the end factor ``end`` (default 1e-3)."""
    return end**p


def poly(p: float, power: float = 2.0) -> float:
    """``(1 - p) ** power``: polynomial decay to 0; power 2 is the paper's "poly"."""
    return (1.0 - p) ** power


def htd(p: float, lower: float = -6.0, upper: float = 3.0) -> float:
    """``0.5 * (1 - tanh(lower + (upper - lower) * p))``: hyperbolic-tangent decay.

    Defaults L=-6, U=3 are those of Hsueh et al. (2019), which Li et al. (2020) also use.
    The curve starts at 1 - 6e-6 (not exactly 1) and ends at 0.5 * (1 - tanh(3)) = 0.0025.
    """
    return 0.5 * (1.0 - math.tanh(lower + (upper - lower) * p))


def constant(p: float) -> float:
    """``1``: no decay (the trunk of warmup-stable-decay, or a budget-unaware run)."""
    return 1.0


def rex(p: float) -> float:
    """``(1 - p) / (1 - p / 2)``: the REX profile (Chen et al., MLSys 2022); ends at 0."""
    return (1.0 - p) / (1.0 - p / 2.0)


def sqrt(p: float) -> float:
    """``1 - sqrt(p)``: the "1 - sqrt" decay to 0; as branch mode's cooldown shape, Hägele
    et al. (2024) report it beats a linear cooldown."""
    return 1.0 - math.sqrt(p)


def wsd(p: float, cooldown: float = 0.2) -> float:
    """Warmup-stable-decay: 1 until ``1 - cooldown``, then ``(1 - p) / cooldown`` to 0.

    Hägele et al. (2024): a linear cooldown over the last 10-20% of a budget matches a
    full schedule of that length; the default is 20%.
    """
    return 1.0 if p <= 1.0 - cooldown else (1.0 - p) / cooldown


PROFILES: dict[str, Callable[..., float]] = {
    "linear": linear,
    "step": step,
    "cosine": cosine,
    "exp": exp,
    "poly": poly,
    "htd": htd,
    "constant": constant,
    "rex": rex,
    "sqrt": sqrt,
    "wsd": wsd,
}


def _check_params(name: str, params: dict) -> None:
    allowed = {
        "step": ("milestones", "gamma"),
        "exp": ("end",),
        "poly": ("power",),
        "htd": ("lower", "upper"),
        "wsd": ("cooldown",),
    }.get(name, ())
    for key in params:
        if key not in allowed:
            choices = ", ".join(allowed) if allowed else "none"
            raise InputError(f"profile {name!r} takes no parameter {key!r} (allowed: {choices})")
    if "cooldown" in params:
        check_fraction(params["cooldown"], "cooldown")
    if "gamma" in params:
        check_fraction(params["gamma"], "gamma")
    if "end" in params and not (is_real(params["end"]) and 0 < params["end"] < 1):
        raise InputError(f"end must be a number in (0, 1), got {params['end']!r}")
    if "power" in params and not (is_real(params["power"]) and params["power"] > 0):
        raise InputError(f"power must be a number > 0, got {params['power']!r}")
    if "milestones" in params:
        ms = tuple(params["milestones"])
        if not all(is_real(m) and 0 < m < 1 for m in ms) or list(ms) != sorted(ms):
            raise InputError(f"milestones must be increasing fractions in (0, 1), got {ms!r}")
    if params.get("lower", -6.0) >= params.get("upper", 3.0):
        raise InputError(f"htd needs lower < upper, got lower={params.get('lower')!r}, upper={params.get('upper')!r}")


def get_profile(name: str, **params: object) -> Profile:
    """The profile called ``name`` with its parameters bound, checked once here."""
    check_choice(name, "profile", tuple(PROFILES))
    _check_params(name, params)
    return functools.partial(PROFILES[name], **params) if params else PROFILES[name]


def budget_multiplier(t: int, budget: int, profile: Profile, warmup: int = 0) -> float:
    """Multiplier of the peak rate for the ``t``-th step (0-based) of a ``budget``-step run.

    ``t`` is clamped to ``budget``: past its budget a schedule holds its end value.
    """
    if t < warmup:
        return (t + 1) / (warmup + 1)
    t = min(t, budget)
    return profile((t - warmup) / (budget - warmup))


def check_warmup(warmup: object, budget: int, name: str = "warmup", what: str = "the budget") -> int:
    """``warmup`` as an int when ``0 <= warmup < budget``; zero warmup always passes (the
    budget it is checked against may be 0: branch mode's first trunk with cooldown 1)."""
    warmup = check_iterations(warmup, name, minimum=0)
    if warmup and warmup >= budget:
        raise InputError(f"{name} must be smaller than {what} ({budget} iterations), got {warmup}")
    return warmup


def check_optimizer(optimizer: object) -> None:
    if not isinstance(optimizer, Optimizer):
        raise InputTypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not optimizer.param_groups:
        raise InputError("optimizer has no param groups: give it the model's parameters")


class _ProfileScheduler(LRScheduler):
    """Bookkeeping shared by the budget and the time-budget scheduler: the profile, its
    parameters and the warmup; subclasses only say how far along the budget a step is."""

    _unsaved: tuple[str, ...] = ("_fn",)

    def __init__(self, optimizer: Optimizer, profile: str, warmup: int, last_epoch: int, profile_params: dict) -> None:
        check_optimizer(optimizer)
        self._fn = get_profile(profile, **profile_params)
        self.profile = profile
        self.profile_params = profile_params
        self.warmup = warmup
        super().__init__(optimizer, last_epoch)

    def multiplier(self, t: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float | torch.Tensor]:
        m = self.multiplier(self.last_epoch)
        return [base * m for base in self.base_lrs]

    def state_dict(self) -> dict:
        return {k: v for k, v in super().state_dict().items() if k not in self._unsaved}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._fn = get_profile(self.profile, **self.profile_params)


class BudgetScheduler(_ProfileScheduler):
    """Learning rate that follows ``profile`` and reaches its end value at ``budget``.

    Example::

        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = BudgetScheduler(opt, budget=2700)          # linear to 0 at step 2700
        for batch in batches(2700):
            train_step(model, opt, batch)
            sched.step()

    Args:
        optimizer: the optimizer whose param groups' ``lr`` is the peak rate.
        budget: iterations (optimizer steps) the run may take, an integer >= 1.
        profile: one of :data:`PROFILES` (default ``"linear"``).
        warmup: linear warmup iterations, ``0 <= warmup < budget``.
        **profile_params: the profile's own parameters (``cooldown`` for ``wsd``,
            ``power`` for ``poly``, ``end`` for ``exp``, ``lower``/``upper`` for ``htd``,
            ``milestones``/``gamma`` for ``step``).

    Its ``state_dict`` holds the budget, profile and position, so a run resumed from it
    continues at the same rate.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        budget: int,
        profile: str = "linear",
        *,
        warmup: int = 0,
        last_epoch: int = -1,
        **profile_params: object,
    ) -> None:
        self.budget = check_iterations(budget, "budget")
        warmup = check_warmup(warmup, self.budget)
        super().__init__(optimizer, profile, warmup, last_epoch, profile_params)

    def multiplier(self, t: int) -> float:
        return budget_multiplier(t, self.budget, self._fn, self.warmup)


class TimeBudgetScheduler(_ProfileScheduler):
    """Learning rate that follows ``profile`` over a wall-clock deadline of ``seconds``.

    "Train for two hours and reach rate 0 at the deadline": at every ``step()`` the
    progress is ``p = elapsed / seconds`` (clamped to 1) with the elapsed time since the
    scheduler was built, so the rate falls however fast or slow the steps are. Stop
    training when :attr:`expired` turns true. ``warmup`` counts iterations, as for
    :class:`BudgetScheduler`; the deadline includes them.

    Args:
        optimizer: the optimizer whose param groups' ``lr`` is the peak rate.
        seconds: the time budget, a number > 0.
        profile, warmup, **profile_params: as for :class:`BudgetScheduler`.
        clock: a function returning seconds (default ``time.monotonic``); inject a fake
            one to test without sleeping.

    ``state_dict`` stores the elapsed time, not the clock reading, so a resumed run
    continues from where the deadline stood (time spent down is not counted).
    """

    _unsaved = ("_fn", "_clock", "_start")

    def __init__(
        self,
        optimizer: Optimizer,
        seconds: float,
        profile: str = "linear",
        *,
        warmup: int = 0,
        clock: Callable[[], float] = time.monotonic,
        last_epoch: int = -1,
        **profile_params: object,
    ) -> None:
        if not is_real(seconds) or not seconds > 0:
            raise InputError(f"seconds must be a number > 0, got {seconds!r}")
        self.seconds = float(seconds)
        self._clock = clock
        self._start = clock()
        super().__init__(optimizer, profile, check_iterations(warmup, "warmup", minimum=0), last_epoch, profile_params)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    @property
    def progress(self) -> float:
        return min(1.0, self.elapsed / self.seconds)

    @property
    def expired(self) -> bool:
        return self.elapsed >= self.seconds

    def multiplier(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / (self.warmup + 1)
        return self._fn(self.progress)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "elapsed": self.elapsed}

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        self._start = self._clock() - state.pop("elapsed")
        super().load_state_dict(state)


def budget_from_epochs(epochs: float, iterations_per_epoch: int) -> int:
    """Iterations in ``epochs`` epochs of ``iterations_per_epoch`` steps (rounded, >= 1)."""
    iterations_per_epoch = check_iterations(iterations_per_epoch, "iterations_per_epoch")
    if not is_real(epochs) or not epochs > 0:
        raise InputError(f"epochs must be a number > 0, got {epochs!r}")
    return max(1, round(epochs * iterations_per_epoch))


def budget_from_fraction(fraction: float, full_budget: int) -> int:
    """Iterations in ``fraction`` (in (0, 1]) of a ``full_budget`` (rounded, >= 1)."""
    full_budget = check_iterations(full_budget, "full_budget")
    return max(1, round(check_fraction(fraction, "fraction") * full_budget))
