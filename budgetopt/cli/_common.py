"""What every command uses: status lines, progress bars, subparsers, opening a storage.

A storage is a URL as Optuna writes it: ``sqlite:///studies.db``,
``postgresql://user:password@host/db``, or a path ending in ``.log`` for a
``JournalFileBackend`` journal (:func:`open_storage`); ``--study NAME`` picks a study,
left out the storage's only one (:func:`load_study`).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import optuna

from budgetopt.cli.errors import CommandError, install_hint, one_line

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


def _command(
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


# -- storages -------------------------------------------------------------------------------


def _safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


_DRIVERS = {"postgresql": "the PostgreSQL driver", "mysql": "the MySQL driver"}


def open_storage(url: str, *, create: bool = False, rdb_options: dict | None = None) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``, or a :class:`CommandError` that says why not.

    ``url`` is ``sqlite:///FILE``, any other SQLAlchemy URL Optuna accepts
    (``postgresql://...``, ``mysql://...``), or a path ending in ``.log`` (a journal
    file). With ``create=False`` (commands that read a study) a SQLite or journal file
    must exist already and nothing is created in it; with ``create=True`` (commands
    that run a study) it is created when missing, in a directory that must exist.
    ``rdb_options`` go to ``RDBStorage`` (e.g. the heartbeat of ``budgetopt worker``); a
    journal ignores them. Bad input is exit status 2; a storage that cannot be reached
    or opened, 1.
    """
    shown = _safe_url(url)
    if "://" not in url:
        if not url.endswith(".log"):
            raise CommandError(
                f"storage must be sqlite:///FILE.db, postgresql://USER@HOST/DB or a FILE.log journal, got {shown!r}"
            )
        if not create and not Path(url).is_file():
            raise CommandError(f"storage {shown!r} does not exist (no such journal file)")
        _check_directory(shown, url)
        try:
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
        except OSError as error:
            raise CommandError(f"storage {shown!r} cannot be opened: {one_line(error)}", status=1) from error
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
        if path in ("", ":memory:"):
            raise CommandError(f"storage {shown!r} is an in-memory database: give a file, sqlite:///FILE.db")
        if not create and not Path(path).is_file():
            raise CommandError(f"storage {shown!r} does not exist (no such file: {path})")
        _check_directory(shown, path)
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=not create, **(rdb_options or {}))
        storage.get_all_studies()  # fails here when the database holds no Optuna tables
    except Exception as error:  # any failure to open is the storage's, whatever raised it
        cause = _root_cause(error)  # Optuna and SQLAlchemy wrap the telling exception
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            driver = next((f" ({d})" for scheme, d in _DRIVERS.items() if url.startswith(scheme)), "")
            other = ", or pip install pymysql and a mysql+pymysql://... URL" if cause.name == "MySQLdb" else ""
            raise CommandError(
                f"storage {shown!r} needs the Python module {cause.name!r}{driver}, which is not installed: "
                f"{install_hint(cause.name)}{other}",
                status=1,
            ) from error
        raise CommandError(f"storage {shown!r} cannot be opened as an Optuna storage: {one_line(cause)}", status=1) from error
    return storage


def _check_directory(shown: str, path: str) -> None:
    """A file storage's directory must exist: the environment's failure (exit 1)."""
    directory = Path(path).expanduser().parent
    if not directory.is_dir():
        raise CommandError(f"storage {shown!r}: its directory {str(directory)!r} does not exist", status=1)


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain of ``raise ... from`` / ``during handling``."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return error


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]


def _listing(names: list[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def load_study(storage: optuna.storages.BaseStorage, url: str, name: str | None) -> optuna.Study:
    """The study ``name`` in ``storage`` (opened from ``url``), or its only study when
    ``name`` is None; a :class:`CommandError` listing the names otherwise."""
    names = study_names(storage)
    shown = _safe_url(url)
    if name is None:
        if not names:
            raise CommandError(f"storage {shown!r} has no studies")
        if len(names) > 1:
            raise CommandError(f"storage {shown!r} has {len(names)} studies, choose one with --study: {_listing(names)}")
        name = names[0]
    elif name not in names:
        raise CommandError(f"no study {name!r} in {shown!r}; its studies: {_listing(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=storage)
