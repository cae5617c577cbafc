"""A private PostgreSQL cluster for tests: initdb into a temporary directory, pg_ctl start.

Debian's ``postgresql`` package puts the server binaries in
``/usr/lib/postgresql/VERSION/bin``. PostgreSQL refuses to run as root, so under root
the cluster belongs to the ``postgres`` system user (or ``nobody``). The server listens
on 127.0.0.1 and a free port only, with its unix socket in the temporary directory, and
``fsync`` off: it holds test data.

Roles: ``postgres`` (superuser, trusted on 127.0.0.1, used to create databases) and
``budgetopt`` (password ``PASSWORD``, checked with scram-sha-256): the URLs the tests
hand to budgetopt use ``budgetopt``, so a wrong password is a real authentication error.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

USER = "budgetopt"
PASSWORD = "budgetopt-secret"
_HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


def binaries() -> str | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl, or None."""
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.isfile(os.path.join(d, "initdb"))]
    return max(found, key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One running cluster; ``stop()`` it (the fixture does, even on failure)."""

    def __init__(self, bin_dir: str, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.fsync = fsync  # off for tests; on for a benchmark that measures a real server
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="budgetopt-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.owner = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.owner = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.owner is None:
                raise RuntimeError("running as root and there is no postgres or nobody user to own the cluster")
            os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
        self._databases = 0
        self.started = False

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.owner.pw_name, "--"] if self.owner is not None else []
        subprocess.run(
            [*prefix, os.path.join(self.bin_dir, command[0]), *command[1:]],
            check=True, capture_output=True, text=True, timeout=timeout, cwd=self.dir,
        )

    def start(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write(_HBA)
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.dir} {'' if self.fsync else '-F'} "
            "-c max_connections=300 -c password_encryption=scram-sha-256"
        )
        try:
            self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start", timeout=90)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"pg_ctl start failed: {error.stderr}\n{self.server_log()}") from error
        self.started = True
        self.sql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")

    def server_log(self) -> str:
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def sql(self, statement: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=10)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def url(self, database: str, password: str = PASSWORD, user: str = USER) -> str:
        return f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh database owned by ``budgetopt``; returns its URL."""
        self._databases += 1
        name = f"test_{self._databases}"
        self.sql(f"CREATE DATABASE {name} OWNER {USER}")
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop", timeout=90)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

