"""How a trial goes from one rung budget to the next: the three modes, each an object.

- ``restart`` (:class:`Restart`): every budget trained again from the initial state,
  the profile decaying to 0 at the budget. Compute to report ``budgets[k]``:
  ``budgets[0] + ... + budgets[k]``. Option: ``horizon_exponent``.
- ``branch`` (:class:`Branch`): one constant-rate trunk; budget ``B`` cools down over its
  last ``C(B) = max(1, round(cooldown * B))`` iterations off the trunk, which is
  restored afterwards. Compute: ``budgets[k] + C(budgets[0]) + ... + C(budgets[k-1])``.
  Option: ``cooldown``.
- ``continue`` (:class:`Continue`): one schedule over the largest budget, reported on the
  way while the rate is still high (the baseline). Compute: ``budgets[k]``.

A mode object says everything that differs between the modes, as data:

- :meth:`Mode.segment`: the *phases* of one budget (:class:`SegmentPlan`), the runs of
  steps and the schedule each follows, which :class:`~budgetopt.BudgetedRun` executes;
- :meth:`Mode.compute`: the iterations executed once a budget is reported (the closed
  form of those phases: BudgetedRun's tests count its iterations against it, and the
  benchmark simulator charges it);
- ``keeps`` and ``resumes_from``: the state kept in memory between budgets, and what a
  rung snapshot must hold for a retried trial to resume;
- :meth:`Mode.warmup_limit`: what a warmup must be shorter than;
- :meth:`Mode.schedule`: the schedule a trial ran, as structured data (user attr
  ``budgetopt.schedule``), and :func:`describe_schedule`, the same in words;
- ``budget_aware`` and :meth:`Mode.converged`: which rung values are converged for their
  budget (what :class:`~budgetopt.BudgetSampler` may model, what the dashboard says).

:func:`get_mode` builds one from its name and options (:func:`mode_with` leaves out
another mode's); :func:`compute` is the formula by name. Nothing here imports Optuna or torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from budgetopt._validation import check_choice, check_fraction, is_real
from budgetopt.errors import InputError

MODES = ("restart", "branch", "continue")
# Branch mode's cooldown: this fraction of each budget decays to zero. 0.5, chosen on
# benchmark table A and confirmed on B and C against WSD's usual 0.2 (docs/results.md:
# better picks and a better final model, at 1.25x instead of 1.1x the compute of one schedule).
COOLDOWN = 0.5


def cooldown_iterations(budget: int, cooldown: float = COOLDOWN) -> int:
    """Iterations of branch mode's cooldown for ``budget``: ``max(1, round(cooldown * budget))``."""
    return max(1, round(check_fraction(cooldown, "cooldown") * budget))


@dataclass(frozen=True)
class Phase:
    """Steps ``start <= t < stop`` of a budget (``t`` counts from the budget's first step),
    whose learning rate follows a schedule of ``horizon`` iterations at position
    ``t - origin``.

    ``profile`` None is the run's own profile with its parameters (``"constant"``: branch's
    trunk); ``warmup`` the schedule's linear warmup; ``peak_scale`` (restart with a
    horizon exponent) multiplies the peak rate; ``shared``: one schedule across all the
    budgets (continue), built at the first phase a process runs and stepped on after;
    ``snapshot_before``: the state before the phase is kept (branch: the trunk, restored
    before the next budget).
    """

    start: int
    stop: int
    horizon: int
    profile: str | None = None
    warmup: int = 0
    origin: int = 0
    peak_scale: float | None = None
    shared: bool = False
    snapshot_before: bool = False

    @property
    def steps(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class SegmentPlan:
    """What one budget executes: the state restored before its first step (``"initial"``,
    ``"trunk"`` or None), then its phases in order."""

    restore: str | None
    phases: tuple[Phase, ...]

    @property
    def steps(self) -> int:
        return sum(phase.steps for phase in self.phases)


@dataclass(frozen=True)
class Mode:
    """What a mode does with a trial's budgets; subclasses :class:`Restart`,
    :class:`Branch`, :class:`Continue`. Instances are immutable and carry the mode's own
    option (restart's ``horizon_exponent``, branch's ``cooldown``)."""

    name: ClassVar[str]
    budget_aware: ClassVar[bool] = True  # every rung value is converged for its budget
    keeps: ClassVar[str | None] = None  # the state kept in memory and restored before a budget
    resumes_from: ClassVar[str] = "current"  # what a rung snapshot holds for a retry: "initial", "trunk", "current"
    words: ClassVar[str] = ""  # one sentence for people (the dashboard's note)

    def segment(self, budgets: Sequence[int], k: int, warmup: int = 0) -> SegmentPlan:
        """The phases of budget ``budgets[k]``."""
        raise NotImplementedError

    def compute(self, budgets: Sequence[int], k: int | None = None) -> int:
        """Iterations executed, re-done ones included, once ``budgets[k]`` (default: the
        last budget) is reported."""
        raise NotImplementedError

    def warmup_limit(self, budgets: Sequence[int]) -> tuple[int, str]:
        """``(iterations, what they are)``: a warmup must be shorter than that."""
        return budgets[0], "the first budget"

    @classmethod
    def converged(cls, plan: Sequence[int]) -> tuple[int, ...]:
        """The budgets of ``plan`` at which a value is converged for its budget."""
        return tuple(plan)

    def options(self) -> dict[str, Any]:
        """The mode's option when it is not the default (``{}`` for none), as keyword
        arguments of :func:`get_mode` and :class:`~budgetopt.BudgetedRun`."""
        return {}

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options this mode takes (restart: ``horizon_exponent``, branch: ``cooldown``)."""
        return tuple(f.name for f in fields(cls))

    def schedule(self, profile: str = "linear", params: Mapping[str, Any] | None = None, warmup: int = 0) -> dict:
        """The schedule a trial of this mode runs, as the JSON-able dict of user attr
        ``budgetopt.schedule`` (:data:`budgetopt.attrs.ATTR_SCHEDULE`)."""
        return {
            "mode": self.name,
            "profile": profile,
            "params": dict(params or {}),
            "warmup": int(warmup),
            "cooldown": None,
            "horizon_exponent": 0.0,
        }


def _index(budgets: Sequence[int], k: int | None) -> int:
    k = len(budgets) - 1 if k is None else k
    if not 0 <= k < len(budgets):
        raise InputError(f"k must index the {len(budgets)} budgets, got {k}")
    return k


@dataclass(frozen=True)
class Restart(Mode):
    """Each budget trained from the initial state with the profile decaying to 0 at it
    (Li et al., 2020). ``horizon_exponent`` ``beta``: budget ``B`` at the peak rate times
    ``(B_max / B) ** beta``."""

    horizon_exponent: float = 0.0
    name = "restart"
    keeps = "initial"
    resumes_from = "initial"
    words = (
        "each rung is trained again from the initial weights with the learning rate decaying to 0 "
        "at its budget (Li et al., 2020)"
    )

    def segment(self, budgets: Sequence[int], k: int, warmup: int = 0) -> SegmentPlan:
        budget = budgets[k]
        scale = (budgets[-1] / budget) ** self.horizon_exponent if self.horizon_exponent else None
        return SegmentPlan("initial" if k > 0 else None, (Phase(0, budget, budget, warmup=warmup, peak_scale=scale),))

    def compute(self, budgets: Sequence[int], k: int | None = None) -> int:
        return int(sum(budgets[: _index(budgets, k) + 1]))

    def options(self) -> dict[str, Any]:
        return {"horizon_exponent": self.horizon_exponent} if self.horizon_exponent else {}

    def schedule(self, profile: str = "linear", params: Mapping[str, Any] | None = None, warmup: int = 0) -> dict:
        return super().schedule(profile, params, warmup) | {"horizon_exponent": self.horizon_exponent}


@dataclass(frozen=True)
class Branch(Mode):
    """One constant-rate trunk; each budget's last ``cooldown`` fraction decays to 0 off
    it, and the trunk is restored after the report (warmup-stable-decay)."""

    cooldown: float = COOLDOWN
    name = "branch"
    keeps = "trunk"
    resumes_from = "trunk"
    words = (
        "one constant-rate trunk; at each rung a cooldown to 0 is branched off and the trunk "
        "restored (warmup-stable-decay)"
    )

    def trunk_end(self, budget: int) -> int:
        """Where the trunk of ``budget`` ends and its cooldown begins."""
        return budget - cooldown_iterations(budget, self.cooldown)

    def segment(self, budgets: Sequence[int], k: int, warmup: int = 0) -> SegmentPlan:
        budget, trunk_end = budgets[k], self.trunk_end(budgets[k])
        trunk_pos = max((self.trunk_end(b) for b in budgets[:k]), default=0)  # where the kept trunk is
        phases = []
        if trunk_end > trunk_pos:
            phases.append(Phase(trunk_pos, trunk_end, trunk_end, profile="constant", warmup=warmup))
        cooldown = Phase(trunk_end, budget, budget - trunk_end, origin=trunk_end, snapshot_before=k < len(budgets) - 1)
        return SegmentPlan("trunk" if k > 0 else None, (*phases, cooldown))

    def compute(self, budgets: Sequence[int], k: int | None = None) -> int:
        k = _index(budgets, k)
        return int(budgets[k]) + sum(cooldown_iterations(b, self.cooldown) for b in budgets[:k])

    def warmup_limit(self, budgets: Sequence[int]) -> tuple[int, str]:
        return self.trunk_end(budgets[0]), "the first trunk (first budget minus its cooldown)"

    def options(self) -> dict[str, Any]:
        return {"cooldown": self.cooldown}

    def schedule(self, profile: str = "linear", params: Mapping[str, Any] | None = None, warmup: int = 0) -> dict:
        return super().schedule(profile, params, warmup) | {"cooldown": self.cooldown}


@dataclass(frozen=True)
class Continue(Mode):
    """One schedule over the largest budget, reported at each budget mid-schedule: the
    baseline (today's early stopping)."""

    name = "continue"
    budget_aware = False
    words = (
        "one full-length schedule over the largest budget, judged at the rungs mid-schedule, while the rate "
        "is still high (the baseline)"
    )

    def segment(self, budgets: Sequence[int], k: int, warmup: int = 0) -> SegmentPlan:
        start = budgets[k - 1] if k > 0 else 0
        return SegmentPlan(None, (Phase(start, budgets[k], budgets[-1], warmup=warmup, shared=True),))

    def compute(self, budgets: Sequence[int], k: int | None = None) -> int:
        return int(budgets[_index(budgets, k)])

    @classmethod
    def converged(cls, plan: Sequence[int]) -> tuple[int, ...]:
        return tuple(plan[-1:])  # only the end of its schedule


MODE_TYPES: dict[str, type[Mode]] = {"restart": Restart, "branch": Branch, "continue": Continue}


def get_mode(name: str, *, cooldown: float | None = None, horizon_exponent: float = 0.0) -> Mode:
    """The mode called ``name`` with its option: ``cooldown`` (branch only; None: :data:`COOLDOWN`) or
    ``horizon_exponent`` (restart only). An option of another mode is a ValueError."""
    mode_type = MODE_TYPES[check_choice(name, "mode", MODES)]
    if not is_real(horizon_exponent) or not horizon_exponent >= 0:
        raise InputError(f"horizon_exponent must be a number >= 0, got {horizon_exponent!r}")
    options: dict[str, Any] = {}
    if horizon_exponent:
        if "horizon_exponent" not in mode_type.option_names():
            raise InputError(f"horizon_exponent needs mode='restart' (one peak rate per budget), got mode={name!r}")
        options["horizon_exponent"] = float(horizon_exponent)
    if cooldown is not None:
        if "cooldown" not in mode_type.option_names():
            raise InputError(
                f"cooldown is branch mode's (the fraction of each budget that decays off the trunk), got it with mode={name!r}"
            )
        options["cooldown"] = check_fraction(cooldown, "cooldown")
    return mode_type(**options)


def mode_with(name: str, **options: Any) -> Mode:
    """The mode called ``name`` with those of ``options`` that are its own; the others'
    (another mode's, or None) are left out. For callers that hold every mode's settings:
    a table's cooldown, a command line's ``--cooldown``, a recorded schedule."""
    own = MODE_TYPES[check_choice(name, "mode", MODES)].option_names()
    return get_mode(name, **{k: v for k, v in options.items() if k in own and v is not None})


def mode_of_schedule(schedule: Mapping[str, Any]) -> Mode:
    """The mode, with its option, that ran ``schedule`` (a :meth:`Mode.schedule` dict)."""
    return mode_with(
        schedule.get("mode"),  # type: ignore[arg-type]
        cooldown=schedule.get("cooldown"),
        horizon_exponent=schedule.get("horizon_exponent"),
    )


def describe_schedule(schedule: Mapping[str, Any]) -> str:
    """A :meth:`Mode.schedule` dict in words, e.g. ``poly(power=2.0), warmup 5`` or
    ``constant trunk + linear cooldown over 0.5 of each budget``."""
    params = ", ".join(f"{k}={v}" for k, v in (schedule.get("params") or {}).items())
    label = f"{schedule.get('profile')}({params})" if params else str(schedule.get("profile"))
    if schedule.get("cooldown") is not None:
        label = f"constant trunk + {label} cooldown over {schedule['cooldown']:g} of each budget"
    if schedule.get("warmup"):
        label += f", warmup {schedule['warmup']}"
    if schedule.get("horizon_exponent"):
        label += f", peak rate x (B_max/B)^{schedule['horizon_exponent']:g}"
    return label


def compute(mode: str, budgets: Sequence[int], k: int | None = None, cooldown: float = COOLDOWN) -> int:
    """Iterations executed, re-done ones included, by a run in ``mode`` over ``budgets``
    once it has reported ``budgets[k]`` (default: the last budget); ``cooldown`` is
    branch mode's and ignored by the others. :meth:`Mode.compute` by name."""
    return mode_with(mode, cooldown=cooldown).compute(budgets, k)
