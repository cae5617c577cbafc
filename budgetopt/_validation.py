"""Argument checks shared by every public constructor: one message format everywhere."""

from __future__ import annotations

import math
import numbers
from typing import TypeGuard

from budgetopt.errors import InputError, InputTypeError


def is_integer(value: object) -> TypeGuard[int]:
    """An integer that is not a bool: ``int``, NumPy's integers (``numbers.Integral``).

    A function rather than ``isinstance(value, numbers.Integral)`` at each call: type
    checkers do not count ``int`` as ``numbers.Integral`` and would take every check for
    one that always fails.
    """
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def is_real(value: object) -> TypeGuard[float]:
    """A real number that is not a bool: ``int``, ``float``, NumPy's (``numbers.Real``)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def check_iterations(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int when it is an integer >= ``minimum``, else raise.

    Budgets are counts of optimizer iterations: 2.5 iterations or ``True`` iterations are
    not budgets, so floats and bools are rejected rather than rounded.
    """
    if not is_integer(value):
        raise InputTypeError(f"{name} must be an integer number of iterations, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_fraction(value: object, name: str, *, low_open: bool = True) -> float:
    """A fraction in (0, 1] (or [0, 1] with ``low_open=False``)."""
    if not is_real(value):
        raise InputTypeError(f"{name} must be a number in (0, 1], got {value!r}")
    ok = (0 < value <= 1) if low_open else (0 <= value <= 1)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise InputError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


COMPUTE_FORMS = "a number of full budgets with 'fb' (30fb, 2.5fb) or of iterations with 'it' (50000it)"


def parse_compute(text: object, full_budget: int, option: str, bare: str) -> int:
    """Compute given on a command line, in iterations: ``30fb`` (full budgets, times
    ``full_budget``), ``50000it`` (iterations), or a bare number in the command's own unit
    ``bare`` (``"fb"`` for the bench commands, ``"it"`` for workers). One idea, compute,
    with one spelling on every command; a one-line :class:`InputError` naming the forms
    otherwise (and for compute under one iteration)."""
    number, unit = compute_parts(text, option, bare)
    if unit == "it":
        if number != int(number):
            raise InputError(f"{option} {text!r}: iterations are a whole number; give {COMPUTE_FORMS}")
        return int(number)
    iterations = number * full_budget
    if not math.isfinite(iterations) or iterations >= 2**62:
        raise InputError(f"{option} {text!r} is more compute than any run; give {COMPUTE_FORMS}")
    if round(iterations) < 1:
        raise InputError(f"{option} {text!r} is under one iteration (a full budget is {full_budget}); give {COMPUTE_FORMS}")
    return int(round(iterations))


def compute_parts(text: object, option: str, bare: str) -> tuple[float, str]:
    """``(number, unit)`` of a ``--compute`` value (:func:`parse_compute`'s forms; ``unit``
    ``"fb"`` or ``"it"``), checked to be a positive finite number."""
    value = str(text).strip().lower()
    unit = bare
    for suffix in ("fb", "it"):
        if value.endswith(suffix):
            value, unit = value[: -len(suffix)].rstrip(), suffix
            break
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0) or (unit == "it" and number >= 2**62):
        raise InputError(f"{option} {text!r}: give {COMPUTE_FORMS}; a bare number is {_unit_words(bare)}")
    return number, unit


def _unit_words(unit: str) -> str:
    return "full budgets" if unit == "fb" else "iterations"
