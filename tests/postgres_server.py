"""A real PostgreSQL server for the tests: Debian's `postgresql` package (`.ci/run` installs it), a data
folder in a temporary directory, a free port, its unix socket in that directory, no TCP listener.

`initdb` refuses to run as root, so as root the server runs as the package's `postgres` user
(`runuser -u postgres`). Tests that need it skip, saying why, only when PostgreSQL is not installed.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "pg_server", "pg_url"]

_SUPERUSER = "cc"  # the server's superuser, which the tests connect as (trust authentication, socket only)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin_dir() -> Path | None:
    """The folder of `initdb` and `pg_ctl`: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """One throwaway server; `url(db)` for a new database in it."""

    def __init__(self, folder: Path, bin_dir: Path):
        self.folder, self.bin_dir, self.port = folder, bin_dir, _free_port()
        self._names = itertools.count()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(folder, "postgres")
        self._run("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", _SUPERUSER, "--no-sync", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {folder} -c listen_addresses=''")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin_dir / tool), *args], check=True, capture_output=True, text=True)

    def url(self, database: str) -> str:
        return f"postgresql://{_SUPERUSER}@/{database}?host={self.folder}&port={self.port}"

    def new_database(self) -> str:
        """The URL of a fresh, empty database."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb; `apt-get install postgresql`, as .ci/run does): "
                    "the PostgreSQL store is not tested")
    folder = Path(tempfile.mkdtemp(prefix="cc-pg-"))
    server = PostgresServer(folder, bin_dir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh database on the tests' PostgreSQL server."""
    return pg_server.new_database()
