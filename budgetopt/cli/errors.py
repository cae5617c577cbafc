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

**Why the classification reads where an exception was raised, not only its type.** The
library reports bad input the way Python libraries do (Optuna, torch, the standard
library): ``ValueError`` or ``TypeError`` with a message for the user, raised by a
``raise`` statement in budgetopt (``StudyScriptError`` and ``TableError`` are
``ValueError`` subclasses). Library users catch those types and the tests assert them, so
they stay; an exception class of the command line's own at every ``raise`` would tie the
library to its CLI. But the type alone cannot tell that ``ValueError`` from one that
matplotlib raises deep inside a plot, or a ``TypeError``/``KeyError`` that an expression
in budgetopt raises (``d[key]``, a call with the wrong arguments): bugs, whose traceback
the user must see. Python records the difference: the innermost frame of the traceback
and the instruction it was executing (``tb_lasti``). An exception is budgetopt's message
for the user only when that instruction is a ``raise`` statement in budgetopt's own
source. Where the command line *can* say what a failure is, it says so with a type:
:class:`CommandError` carries its exit status (2 bad input, 1 the environment).

**The user's code** is the study script: the only code of the user's that budgetopt
runs. :func:`budgetopt.study_script.load_study_script` records the files it imports
(:func:`~budgetopt.study_script.script_files`); an exception whose traceback passes
through one of them happened while running the user's code (in it, or in torch or a
budgetopt helper it called), and the deepest frame in the script is the line to show.
The library's exception is not wrapped in a type of ours: Optuna records it as the
trial's failure as it is, and library users catch what the script raised.

**Worker processes.** ``bench build --jobs N`` trains in a ``ProcessPoolExecutor``:
``concurrent.futures`` (like ``multiprocessing.pool``) re-raises the worker's exception
in the parent with the worker's formatted traceback attached as ``__cause__``
(``_RemoteTraceback``). Its ``File "...", line N, in F`` lines are read as the frames
below the parent's; there a ``raise`` statement is recognised by its source line.
"""

from __future__ import annotations

import concurrent.futures.process
import dis
import errno
import linecache
import multiprocessing.pool
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from budgetopt._messages import install_hint, message_line, typed_line


class CommandError(Exception):
    """A one-line error for the user; ``status`` is the exit status (2: bad input, 1: the
    environment -- a storage that does not answer, a port in use)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


BAD_INPUT, ENVIRONMENT, STUDY_SCRIPT = "bad input", "environment", "study script"


@dataclass(frozen=True)
class Failure:
    """What a failed command prints (``budgetopt: error: {message}``) and exits with."""

    kind: str  # BAD_INPUT, ENVIRONMENT or STUDY_SCRIPT
    status: int
    message: str


# The types budgetopt raises, at a ``raise`` statement, for bad input: an argument, a file
# or a name the user gave (``--out FILE is not a directory`` is a NotADirectoryError).
_INPUT_TYPES = (ValueError, TypeError, LookupError, FileNotFoundError, FileExistsError, NotADirectoryError,
                IsADirectoryError, PermissionError)
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # budgetopt/
_REMOTE = (concurrent.futures.process._RemoteTraceback, multiprocessing.pool.RemoteTraceback)  # type: ignore[attr-defined]
_FRAME_LINE = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+), in (?P<name>.+)$')

def classify(error: BaseException) -> Failure | None:
    """The failure ``error`` is, or None for a bug in budgetopt (show its traceback)."""
    from budgetopt.storage import StorageError

    if isinstance(error, (CommandError, StorageError)):
        return Failure(BAD_INPUT if error.status == 2 else ENVIRONMENT, error.status, message_line(error))
    frames = _frames(error)
    where = _in_study_script(frames)
    if where is not None:
        return Failure(STUDY_SCRIPT, 1, f"{typed_line(error)} (at {where})")
    from budgetopt.bench.table import TableError
    from budgetopt.study_script import StudyScriptError

    if isinstance(error, (StudyScriptError, TableError)) or (
        isinstance(error, _INPUT_TYPES) and frames and _raised_by_budgetopt(error, frames[-1])
    ):
        return Failure(BAD_INPUT, 2, message_line(error))
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


@dataclass(frozen=True)
class _Frame:
    file: str
    line: int
    name: str
    tb: TracebackType | None = None  # None for a frame of a worker process's traceback


def _frames(error: BaseException) -> list[_Frame]:
    """The frames of ``error``'s traceback, outermost first, followed by those of the
    worker process that raised it, if any."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(_Frame(tb.tb_frame.f_code.co_filename, tb.tb_lineno, tb.tb_frame.f_code.co_name, tb))
        tb = tb.tb_next
    if not isinstance(error.__cause__, _REMOTE):
        return frames
    # The worker's text formats its whole chain: the last "Traceback" is of this exception.
    text = str(error.__cause__.tb).rsplit("Traceback (most recent call last):", 1)[-1]
    for line in text.splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            frames.append(_Frame(match["file"], int(match["line"]), match["name"]))
    return frames


def _in_study_script(frames: list[_Frame]) -> str | None:
    """``FILE:LINE in FUNCTION`` of the deepest frame in a study script, if any."""
    from budgetopt.study_script import script_files

    scripts = script_files()
    for frame in reversed(frames):
        if os.path.abspath(frame.file) in scripts:
            return f"{_shown(frame.file)}:{frame.line} in {frame.name}"
    return None


def _shown(file: str) -> str:
    """``file`` relative to the working directory when it is below it."""
    path = os.path.abspath(file)
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def _raised_by_budgetopt(error: BaseException, frame: _Frame) -> bool:
    """Whether ``frame``, the innermost, is a ``raise`` statement in budgetopt's source."""
    if not os.path.abspath(frame.file).startswith(_PACKAGE):
        return False
    if frame.tb is not None:  # the instruction the frame was executing
        code, offset = frame.tb.tb_frame.f_code, frame.tb.tb_lasti
        return any(i.offset == offset and i.opname == "RAISE_VARARGS" for i in dis.get_instructions(code))
    # A worker process's frame: its source line, a raise statement of this very type.
    source = linecache.getline(frame.file, frame.line).strip()
    return source.startswith("raise ") and type(error).__name__ in source


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
