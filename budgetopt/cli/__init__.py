"""The ``budgetopt`` command line (also ``python -m budgetopt``).

One module per command group: :mod:`~budgetopt.cli.dashboard`,
:mod:`~budgetopt.cli.schedules`, :mod:`~budgetopt.cli.report`,
:mod:`~budgetopt.cli.workers` (``worker`` and ``launch``); ``compare``, ``demo`` and
``bench`` live with the benchmark engine, in :mod:`budgetopt.bench.cli`. What they share
is in :mod:`~budgetopt.cli._common`; how a failure ends, in :mod:`~budgetopt.cli.errors`.

Conventions, the same for every command:

- a storage is a URL as Optuna writes it: ``sqlite:///studies.db``,
  ``postgresql://user:password@host/db``, or a path ending in ``.log`` for a
  ``JournalFileBackend`` journal (:func:`open_storage`);
- ``--study NAME`` picks a study; left out, the storage's only study is used, and with
  several the error lists their names (:func:`load_study`);
- exit status 0 on success; 2 on bad usage or bad input, 1 when the environment fails
  (a database that does not answer, a port in use, a missing directory or module) or
  the user's study script raises, each with one ``budgetopt: error: ...`` line on
  stderr; a bug in budgetopt shows its traceback. ``BUDGETOPT_DEBUG=1`` shows the
  traceback behind any one-line error (:mod:`budgetopt.cli.errors` says how a failure
  is told apart);
- results go to stdout, progress and status lines to stderr; ``--quiet`` silences
  the latter; progress bars (tqdm, :func:`progress`) never break when the output is
  not a terminal.

Adding a command is one function that builds its subparser and one handler, with the
builder listed in ``COMMANDS``::

    def _add_compare(commands) -> None:
        parser = add_command(commands, "compare", "compare modes at equal compute", '''
            budgetopt compare fashion_mnist --storage sqlite:///compare.db
        ''')
        parser.add_argument("script", help="a built-in study script or a .py file")
        parser.set_defaults(handler=_run_compare)

    def _run_compare(args: argparse.Namespace) -> int:
        storage = open_storage(args.storage, create=True)
        ...                                  # call the library; raise budgetopt.errors.InputError
        return 0                             # for bad input, ResourceError for the environment

    COMMANDS = (..., _add_compare)
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable

from budgetopt.cli._common import add_command, progress, say
from budgetopt.cli.dashboard import add_dashboard
from budgetopt.cli.errors import classify
from budgetopt.cli.frontier import add_export, add_frontier
from budgetopt.cli.report import add_report
from budgetopt.cli.schedules import add_schedules
from budgetopt.cli.workers import add_launch, add_worker
from budgetopt.storage import load_study, open_storage, study_names

__all__ = ["COMMANDS", "build_parser", "load_study", "main", "open_storage", "progress", "say", "study_names"]


# -- budgetopt compare / demo / bench: budgetopt/bench/cli.py --------------------------------


def _add_compare(commands: argparse._SubParsersAction) -> None:
    from budgetopt.bench.cli import add_compare

    add_compare(commands, add_command)


def _add_demo(commands: argparse._SubParsersAction) -> None:
    from budgetopt.bench.cli import add_demo

    add_demo(commands, add_command)


def _add_bench(commands: argparse._SubParsersAction) -> None:
    from budgetopt.bench.cli import add_bench

    add_bench(commands, add_command)


# -- main -----------------------------------------------------------------------------------

# One builder per command: it adds a subparser and sets its handler (see the module docstring).
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_dashboard, add_schedules, add_report, add_frontier, add_export, add_worker, add_launch,
    _add_compare, _add_demo, _add_bench,
)


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every budgetopt command (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"budgetopt: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="budgetopt",
        description="Budget-aware hyperparameter search for Optuna: every trial's learning rate decays to zero at its budget.",
        epilog="Run 'budgetopt COMMAND --help' for a command's options and examples.",
    )
    from budgetopt import __version__

    parser.add_argument("--version", action="version", version=f"budgetopt {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(commands)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, said: set[str]) -> None:
    """A warning on one line, once; where it came from when that is not budgetopt itself (a
    study script, torch), whose messages name their own values."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    where = "" if os.path.abspath(filename).startswith(package + os.sep) else f" ({filename}:{lineno})"
    text = f"budgetopt: warning: {kind}{' '.join(str(message).split())}{where}"
    if text not in said:
        said.add(text)
        print(text, file=sys.stderr)


def _stdout_reader_gone() -> bool:
    """Whether standard output's reader went away; if so, point standard output at the null
    device so that Python's own flush at exit raises nothing more. A broken pipe elsewhere
    (standard error's, a socket's) is no such thing: False."""
    import select

    try:
        fd = sys.stdout.fileno()
        poll = select.poll()  # a pipe whose reader closed reports POLLERR to its writer
        poll.register(fd, select.POLLOUT)
        if not any(events & select.POLLERR for _, events in poll.poll(0)):
            return False
    except (OSError, ValueError, AttributeError):  # no file descriptor behind sys.stdout: not its pipe
        return False
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 1 the environment
    or the user's study script failed). A bug in budgetopt propagates: its traceback."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the exact command, for reports
    try:
        with warnings.catch_warnings():  # a warning is one line, said once (a Ladder is often built twice)
            said: set[str] = set()  # not warnings' "once": any filter change in between (catch_warnings) resets it
            warnings.showwarning = lambda message, category, filename, lineno, *_, **__: _one_line_warning(
                message, category, filename, lineno, said
            )
            return args.handler(args) or 0
    except KeyboardInterrupt:
        print("budgetopt: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, BrokenPipeError) and _stdout_reader_gone():
            return 0  # the reader went away (budgetopt frontier ... | head): stop quietly, as head expects

        failure = classify(error)
        if failure is None or os.environ.get("BUDGETOPT_DEBUG"):
            raise
        print(f"budgetopt: error: {failure.message}", file=sys.stderr)
        return failure.status


if __name__ == "__main__":
    sys.exit(main())
