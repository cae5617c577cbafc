"""What budgetopt can fail with, by type.

Every error budgetopt raises for its user to read is one of these; the command line maps
each type to its exit status and prints one line (``budgetopt.cli.errors``). Anything
else that escapes a command is a bug, shown with its traceback.

=======================  ==============================================  ====
type                     what failed                                     exit
=======================  ==============================================  ====
:class:`InputError`      bad input: an argument, a file, a name the      2
                         user gave (the message names the value and
                         what is allowed)
:class:`ResourceError`   the environment: a database that does not       1
                         answer, a port in use, a module not installed
:class:`UserCodeError`   the user's own code (a study script) raised;    1
                         the original exception and the line it came
                         from
=======================  ==============================================  ====

The input types are also the built-in types a Python library raises for the same
failure (``InputError`` is a ``ValueError``, :class:`InputTypeError` a ``TypeError``,
:class:`MissingPathError` a ``FileNotFoundError``, :class:`PathInputError` an
``OSError``), so code that catches those keeps working. Errors that Python, Optuna or
torch raise themselves keep their own types: a ``FileNotFoundError`` from ``open`` is
the environment's (exit 1, naming the file), a ``KeyError`` from an expression a bug.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

__all__ = [
    "BudgetoptError",
    "InputError",
    "InputTypeError",
    "MissingPathError",
    "PathInputError",
    "ProtocolError",
    "ResourceError",
    "UserCodeError",
]


class BudgetoptError(Exception):
    """Every error budgetopt raises for its user to read."""


class InputError(BudgetoptError, ValueError):
    """Bad input: the message names the value given and what is allowed (exit 2)."""


class InputTypeError(InputError, TypeError):
    """Bad input of the wrong type (a ``TypeError`` too)."""


class _OneMessage(Exception):
    """An ``OSError`` kind made from one message, printed and pickled as that message
    (``OSError``'s own ``str`` would print ``[Errno None] ...`` for a two-argument form)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self):
        return (type(self), (str(self),))


class MissingPathError(_OneMessage, InputError, FileNotFoundError):
    """A file or directory the user named does not exist (a ``FileNotFoundError`` too)."""


class PathInputError(_OneMessage, InputError, OSError):
    """A path the user gave that cannot be used as asked: a file where a directory was
    asked for, a directory that cannot be written (an ``OSError`` too)."""


class ProtocolError(InputError):
    """The user's code returned what the protocol budgetopt calls it by does not allow (a
    study script's ``build`` without an optimizer, a ``train_step`` without a loss): every
    call would fail alike, so a worker stops at the first, where any other error a trial
    raises fails that trial only (exit 2)."""


class ResourceError(BudgetoptError):
    """The environment failed: the message names the thing (a storage that does not
    answer, a port in use, a directory that cannot be created) (exit 1)."""


class UserCodeError(BudgetoptError):
    """The user's own code raised ``error`` while budgetopt called it.

    ``str()`` is ``TYPE: message (at FILE:LINE in FUNCTION)``, the deepest line of the
    user's file in the traceback. ``error`` is the original exception (also
    ``__cause__``); ``where`` the ``FILE:LINE in FUNCTION``; ``error_type`` the original
    type's name. Pickled (from a worker process) it keeps its text, not the original.
    """

    def __init__(self, message: str, where: str, error_type: str, error: BaseException | None = None) -> None:
        super().__init__(message, where, error_type)
        self.message, self.where, self.error_type, self.error = message, where, error_type, error

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message} (at {self.where})" if self.message else (
            f"{self.error_type} (at {self.where})"
        )

    def __reduce__(self):
        return (type(self), (self.message, self.where, self.error_type))

    @classmethod
    def of(cls, error: BaseException, path: str | Path, function: str) -> UserCodeError:
        """``error``, raised while ``function`` of the user's file ``path`` ran."""
        where = f"{function} in {_shown(str(path))}"
        target = os.path.abspath(path)
        for frame, line in traceback.walk_tb(error.__traceback__):
            if os.path.abspath(frame.f_code.co_filename) == target:
                where = f"{_shown(str(path))}:{line} in {frame.f_code.co_name}"
        if isinstance(error, SyntaxError) and error.filename and os.path.abspath(error.filename) == target:
            where = f"{_shown(str(path))}:{error.lineno}"
        message = " ".join(str(error).split())
        return cls(message, where, type(error).__name__, error)


def _shown(file: str) -> str:
    """``file`` relative to the working directory when it is below it."""
    path = os.path.abspath(file)
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative
