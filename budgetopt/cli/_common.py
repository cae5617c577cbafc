"""What every command uses: status lines, progress bars, subcommands with examples.

Storages (a URL, ``--study NAME``) are opened by :mod:`budgetopt.storage`
(:func:`~budgetopt.storage.open_storage`, :func:`~budgetopt.storage.load_study`).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

def say(args: argparse.Namespace, message: str) -> None:
    """A status line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def progress(iterable: Iterable[T], args: argparse.Namespace, **tqdm_kwargs: Any) -> Iterable[T]:
    """``iterable`` with a tqdm progress bar on stderr, none with ``--quiet``.

    tqdm writes plain lines, not a live bar, when stderr is not a terminal.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, disable=getattr(args, "quiet", False), dynamic_ncols=True, **tqdm_kwargs)


def add_command(
    commands: argparse._SubParsersAction, name: str, summary: str, examples: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand with the common options (``--quiet``) and an examples epilog."""
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description or summary, 80),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common()],
    )


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no status lines or progress bars on stderr")
    return common
