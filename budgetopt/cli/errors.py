"""How a failed command ends: which of four kinds of failure it was, told truthfully.

=========================  ====  ==========================================================
the failure                exit  what is printed on stderr
=========================  ====  ==========================================================
bad input                  2     ``budgetopt: error: MESSAGE``: the value, and what is
(arguments, files, names)        allowed
the environment            1     ``budgetopt: error: MESSAGE``: the thing that is missing
(database, port, directory,      or refused (the storage URL, the port, the directory, the
missing module)                  module and how to install it)
the user's study script    1     ``budgetopt: error: TYPE: MESSAGE (at FILE:LINE in
                                 FUNCTION)``: the user's line
a bug in budgetopt         1     Python's traceback
=========================  ====  ==========================================================

With ``BUDGETOPT_DEBUG=1`` every failure but a usage error shows its full traceback.
:func:`classify` decides; :func:`budgetopt.cli.main` prints.

**By type, nothing else.** What a failure is, is its type (:mod:`budgetopt.errors`):
budgetopt raises :class:`~budgetopt.errors.InputError` (a ``ValueError``, with its
``TypeError``, ``FileNotFoundError`` and ``OSError`` kinds) for bad input and
:class:`~budgetopt.errors.ResourceError` for the environment; where it calls the user's
study script it wraps what the script raised in :class:`~budgetopt.errors.UserCodeError`
with the script's line. Besides those, two built-in families are the environment when
they reach the command line: an ``ImportError`` of a module other than budgetopt's (a
missing optional dependency: the ``pip install`` that adds it) and an ``OSError`` (a
file, a directory, a socket: the path it names), and Optuna's ``StorageInternalError``.
Everything else -- a ``ValueError`` from numpy, a ``KeyError`` from an expression -- is
a bug, shown with its traceback. The exceptions of worker processes (``bench build
--jobs N``) arrive in the parent as the same types (they pickle), so they are
classified alike.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from budgetopt._messages import install_hint, message_line
from budgetopt.errors import InputError, ResourceError, UserCodeError

BAD_INPUT, ENVIRONMENT, STUDY_SCRIPT = "bad input", "environment", "study script"


@dataclass(frozen=True)
class Failure:
    """What a failed command prints (``budgetopt: error: {message}``) and exits with."""

    kind: str  # BAD_INPUT, ENVIRONMENT or STUDY_SCRIPT
    status: int
    message: str


def classify(error: BaseException) -> Failure | None:
    """The failure ``error`` is, or None for a bug in budgetopt (show its traceback)."""
    if isinstance(error, UserCodeError):
        return Failure(STUDY_SCRIPT, 1, str(error))
    if isinstance(error, InputError):
        return Failure(BAD_INPUT, 2, message_line(error))
    if isinstance(error, ResourceError):
        return Failure(ENVIRONMENT, 1, message_line(error))
    if isinstance(error, ImportError) and not (error.name or "").startswith("budgetopt"):
        if isinstance(error, ModuleNotFoundError) and error.name:
            return Failure(ENVIRONMENT, 1, f"the Python module {error.name!r} is not installed: {install_hint(error.name)}")
        return Failure(ENVIRONMENT, 1, message_line(error))
    if isinstance(error, OSError):
        return Failure(ENVIRONMENT, 1, _os_error(error))
    import optuna

    if isinstance(error, optuna.exceptions.StorageInternalError):
        return Failure(ENVIRONMENT, 1, f"the storage failed: {message_line(error)}")
    return None


def _os_error(error: OSError) -> str:
    """An OSError that names its file, and the missing directory when that is the cause."""
    if error.filename is None:
        return message_line(error)
    reason = error.strerror or message_line(error)
    if error.errno == errno.ENOENT:
        parent = Path(os.fsdecode(error.filename)).parent
        if not parent.is_dir():
            return f"directory {str(parent)!r} does not exist (for {os.fsdecode(error.filename)!r})"
    target = f" -> {os.fsdecode(error.filename2)!r}" if error.filename2 is not None else ""
    return f"{os.fsdecode(error.filename)!r}{target}: {reason}"
