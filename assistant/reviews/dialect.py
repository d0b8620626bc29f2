"""The review store's SQL-dialect seam: what differs between SQLite and PostgreSQL, and nothing else.

`ReviewStore` (`assistant.reviews.store`) writes its SQL once, with `?` placeholders and a quoted
`"user"` column, which both databases read. A `Dialect` opens the connection, starts a write
transaction that excludes every other writer (SQLite's `BEGIN IMMEDIATE`; in PostgreSQL, `BEGIN`
and one advisory lock, so that several app servers take turns exactly as SQLite's writers do),
applies the named migrations, and says what to check when the database fails.

    dialect = dialect_for(Path("data") / "reviews.sqlite3", None)            # SQLite, the default
    dialect = dialect_for(Path("data"), "postgresql://app@db.internal/chat")  # PostgreSQL
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assistant.core.errors import InputError
from assistant.core.files import PRIVATE_FILE, private_folder
from assistant.reviews.migrations import apply_migrations
from assistant.reviews.postgres import PostgresDialect

__all__ = ["STORE_URL_SCHEMES", "Connection", "Dialect", "SQLiteDialect", "dialect_for"]

STORE_URL_SCHEMES = ("postgresql://", "postgres://")
_BUSY_TIMEOUT_MS = 10_000


class Connection(Protocol):
    """What the store needs of a connection: `sqlite3.Connection` has it, `postgres.PgConnection` adds it."""

    in_transaction: bool

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    shared: bool  # several app servers may use this store at once (each marks only its own cut-off replies)
    location: str  # where the store is, for messages (never a password)
    errors: tuple[type[Exception], ...]  # the driver's exceptions, which the store turns into StoreError

    def connect(self) -> Connection: ...

    def begin_write(self, conn: Connection) -> None:
        """Start a transaction that no other writer runs beside."""
        ...

    def migrate(self, conn: Connection) -> list[str]:
        """Apply the named migrations not yet recorded; return the names applied now."""
        ...

    def advice(self) -> str:
        """What to check when the store fails."""
        ...


@dataclass(frozen=True)
class SQLiteDialect:
    """One SQLite file in WAL mode with `synchronous=FULL`, readable by the app's user only."""

    path: Path  # the database file
    shared = False
    errors = (sqlite3.Error,)

    @property
    def location(self) -> str:
        return str(self.path)

    def connect(self) -> sqlite3.Connection:
        private_folder(self.path.parent)
        # SQLite gives the -wal and -shm files the database file's mode, so 0600 covers all three.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, PRIVATE_FILE)  # a store created before files were private
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def begin_write(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def migrate(self, conn: sqlite3.Connection) -> list[str]:
        applied = apply_migrations(conn)
        conn.execute("PRAGMA foreign_keys = ON")
        return applied

    def advice(self) -> str:
        return ("check that the data folder is writable and the disk has space (set it with --data-dir or "
                "CALIBRATED_CHAT_DATA_DIR)")


def dialect_for(path: Path, url: str | None) -> Dialect:
    """SQLite at `path` when `url` is empty, else PostgreSQL at `url`; InputError for any other URL."""
    if not url:
        return SQLiteDialect(Path(path))
    if not url.startswith(STORE_URL_SCHEMES):
        raise InputError("--store / CALIBRATED_CHAT_STORE must be a PostgreSQL URL starting postgresql:// "
                         "(postgresql://user@host/database); leave it unset for the SQLite file in the data folder")
    return PostgresDialect(url)
