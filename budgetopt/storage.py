"""Optuna storages and snapshot stores by URL: parsing, opening, picking a study, the
file behind a storage.

A storage is a URL as Optuna writes it: ``sqlite:///studies.db``,
``postgresql://user:password@host/db`` (any SQLAlchemy URL Optuna accepts), or a path
ending in ``.log`` for a ``JournalFileBackend`` journal. Everything that reads a URL is
here: the command line opens storages with :func:`open_storage` and :func:`load_study`,
workers find the file a SQLite database or journal lives in (:func:`file_of_url`,
:func:`lock_file_of`) for their ask lock, and open the artifact store of their rung
snapshots (:func:`open_snapshot_store`, :func:`default_snapshot_location`).

Errors are :class:`StorageError` with one line that names the storage (its password
hidden, :func:`safe_url`) and an exit ``status``: 2 for bad input, 1 for the
environment (a server that does not answer, a missing driver or directory).
"""

from __future__ import annotations

import io
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend

from budgetopt._messages import install_hint, message_line, typed_line
from budgetopt._optuna import journal_file_path, unwrap_cached_storage
from budgetopt.errors import BudgetoptError, InputError, ResourceError

_DRIVERS = {"postgresql": "the PostgreSQL driver", "mysql": "the MySQL driver"}


class StorageError(BudgetoptError):
    """A storage that cannot be used, in one line that names it."""


class StorageInputError(StorageError, InputError):
    """A storage given wrongly: a malformed URL, a missing file or study (exit 2)."""


class StorageUnavailableError(StorageError, ResourceError):
    """A storage that cannot be opened or does not answer (exit 1)."""


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def file_of_url(url: str) -> str | None:
    """The file a storage URL names: a journal's path, a SQLite database's file (``""``
    for ``sqlite://`` with none, ``":memory:"``); None for a database server."""
    if "://" not in url:
        return url
    if url.startswith("sqlite:"):
        return url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""
    return None


def open_storage(url: str, *, create: bool = False, rdb_options: dict | None = None) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url``, or a :class:`StorageError` that says why not.

    With ``create=False`` (commands that read a study) a SQLite or journal file must
    exist already and nothing is created in it; with ``create=True`` (commands that run a
    study) it is created when missing, in a directory that must exist. ``rdb_options``
    go to ``RDBStorage`` (e.g. the heartbeat of ``budgetopt worker``); a journal ignores
    them.
    """
    shown = safe_url(url)
    path = file_of_url(url)
    if "://" not in url:
        if not url.endswith(".log"):
            raise StorageInputError(
                f"storage must be sqlite:///FILE.db, postgresql://USER@HOST/DB or a FILE.log journal, got {shown!r}"
            )
        if not create and not Path(url).is_file():
            raise StorageInputError(f"storage {shown!r} does not exist (no such journal file)")
        _check_directory(shown, url)
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(url))
        except OSError as error:
            raise StorageUnavailableError(f"storage {shown!r} cannot be opened: {message_line(error)}") from error
    if path is not None:  # SQLite
        if path in ("", ":memory:"):
            raise StorageInputError(f"storage {shown!r} is an in-memory database: give a file, sqlite:///FILE.db")
        if not create and not Path(path).is_file():
            raise StorageInputError(f"storage {shown!r} does not exist (no such file: {path})")
        _check_directory(shown, path)
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=not create, **(rdb_options or {}))
        storage.get_all_studies()  # fails here when the database holds no Optuna tables
    except Exception as error:  # any failure to open is the storage's, whatever raised it
        cause = _root_cause(error)  # Optuna and SQLAlchemy wrap the telling exception
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        if isinstance(cause, (NoSuchModuleError, ArgumentError)):  # a scheme no database answers to: a typo
            scheme = url.split("://", 1)[0]
            raise StorageInputError(
                f"storage {shown!r}: unknown database scheme {scheme!r}; give sqlite:///FILE.db, "
                "postgresql://USER@HOST/DB, mysql+pymysql://USER@HOST/DB or a FILE.log journal"
            ) from error
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            driver = next((f" ({d})" for scheme, d in _DRIVERS.items() if url.startswith(scheme)), "")
            other = ", or pip install pymysql and a mysql+pymysql://... URL" if cause.name == "MySQLdb" else ""
            raise StorageUnavailableError(
                f"storage {shown!r} needs the Python module {cause.name!r}{driver}, which is not installed: "
                f"{install_hint(cause.name)}{other}"
            ) from error
        raise StorageUnavailableError(
            f"storage {shown!r} cannot be opened as an Optuna storage: {message_line(cause)}"
        ) from error
    return storage


def open_shared_storage(url: str, rdb_options: dict) -> optuna.storages.BaseStorage:
    """:func:`open_storage` for workers that start together: on a fresh database they all
    create Optuna's tables at once, and all but one fail on a table or type that the
    other just made ("already exists", "duplicate key"). Those try again."""
    for attempt in range(5):
        try:
            return open_storage(url, create=True, rdb_options=rdb_options)
        except StorageError as error:
            text = str(error.__cause__ or "")
            if attempt == 4 or not ("already exists" in text or "duplicate key" in text):
                raise
            time.sleep(random.uniform(0.2, 1.0))
    raise AssertionError("unreachable")


def _check_directory(shown: str, path: str) -> None:
    """A file storage's directory must exist: the environment's failure (exit 1)."""
    directory = Path(path).expanduser().parent
    if not directory.is_dir():
        raise StorageUnavailableError(f"storage {shown!r}: its directory {str(directory)!r} does not exist")


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
    ``name`` is None; a :class:`StorageError` listing the names otherwise."""
    names = study_names(storage)
    shown = safe_url(url)
    if name is None:
        if not names:
            raise StorageInputError(f"storage {shown!r} has no studies")
        if len(names) > 1:
            raise StorageInputError(f"storage {shown!r} has {len(names)} studies, choose one with --study: {_listing(names)}")
        name = names[0]
    elif name not in names:
        raise StorageInputError(f"no study {name!r} in {shown!r}; its studies: {_listing(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=storage)


# -- the file behind an opened storage ------------------------------------------------------


def backend_of(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """``storage`` itself, or the ``RDBStorage`` that ``optuna.create_study`` wrapped in its
    private ``_CachedStorage``."""
    return unwrap_cached_storage(storage)


def lock_file_of(storage: optuna.storages.BaseStorage) -> str | None:
    """The file a SQLite database or a journal file lives in (None for other storages)."""
    storage = backend_of(storage)
    if isinstance(storage, optuna.storages.RDBStorage) and storage.engine.dialect.name == "sqlite":
        return storage.engine.url.database or None
    return journal_file_path(storage)


# -- rung snapshots: an Optuna artifact store ------------------------------------------------


def _beside(storage_url: str | None, what: str, path: str | None = None) -> str:
    """``studies.db`` or ``studies.log`` -> ``studies.<what>``; a database server ->
    ``budgetopt-<what>`` in the current directory. ``path``: the storage's file, when
    the caller has an opened storage rather than its URL."""
    path = path if storage_url is None else file_of_url(storage_url)
    if not path or path == ":memory:":
        return f"budgetopt-{what}"
    return str(Path(path).with_suffix(f".{what}"))


def default_snapshot_location(storage_url: str) -> str:
    """Beside a file storage: ``studies.db`` or ``studies.log`` -> ``studies.snapshots/``.
    For a database server: ``budgetopt-snapshots/`` in the current directory (on several
    machines, give a shared directory or an ``s3://`` / ``gs://`` bucket instead)."""
    return _beside(storage_url, "snapshots")


def default_model_location(storage_url: str) -> str:
    """Where ``--keep-models`` keeps annealed rung models by default, as
    :func:`default_snapshot_location` with ``models`` (``studies.db`` -> ``studies.models/``)."""
    return _beside(storage_url, "models")


def default_model_location_of(storage: optuna.storages.BaseStorage) -> str:
    """:func:`default_model_location` of an opened storage (``budgetopt.load_model`` gets a
    study, not its URL): ``FILE.models`` beside a SQLite or journal file."""
    return _beside(None, "models", lock_file_of(storage))


def open_snapshot_store(location: str, what: str = "snapshot") -> Any:
    """The Optuna artifact store at ``location``, checked by writing and removing a probe.
    ``what`` it holds (``"snapshot"``, ``"model"``) names it in the errors.

    ``location``: a directory or ``file://DIR`` (``FileSystemArtifactStore``, created when
    missing), ``s3://BUCKET`` (``Boto3ArtifactStore``) or ``gs://BUCKET``
    (``GCSArtifactStore``). Raises ValueError with a one-line reason.
    """
    from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore, GCSArtifactStore

    scheme, _, rest = location.partition("://") if "://" in location else ("file", "", location)
    if scheme == "file":
        directory = Path(rest).expanduser()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"{what} directory {location} cannot be created: {error.strerror or error}") from None
        store: Any = FileSystemArtifactStore(str(directory))
        shown = f"{what} directory {location}"
    elif scheme in ("s3", "gs"):
        bucket = rest.strip("/")
        if not bucket or "/" in bucket:
            raise InputError(f"{what}s {location!r}: give a bucket, {scheme}://BUCKET (no prefix)")
        try:
            store = Boto3ArtifactStore(bucket) if scheme == "s3" else GCSArtifactStore(bucket)
        except ImportError as error:
            package = "boto3" if scheme == "s3" else "google-cloud-storage"
            raise ResourceError(f"{what}s in {scheme}:// need {package}: pip install {package} ({error})") from None
        shown = f"{what} bucket {location}"
    else:
        raise InputError(f"{what}s must be a directory, file://DIR, s3://BUCKET or gs://BUCKET, got {location!r}")
    probe = f"budgetopt-probe-{uuid.uuid4()}"
    try:
        store.write(probe, io.BytesIO(b"budgetopt"))
        store.remove(probe)
    except Exception as error:
        raise InputError(f"{shown} is not writable: {getattr(error, 'strerror', None) or typed_line(error)}") from None
    return store
