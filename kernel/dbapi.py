"""A SQLite file through the stdlib sqlite3, without importing SQLAlchemy: for read-only commands.

    sqlite_file(url)      the file of a plain SQLite URL ("sqlite:////abs/selfpub.db"), else None
    PlainEngine(path)     the part of SQLAlchemy's Engine the raw-cursor code uses (ledger/sql.py):
        dialect.name              "sqlite"
        dialect.loaded_dbapi      sqlite3 (its .Error)
        connect()                 with ... as conn: conn.connection.cursor()
        raw_connection()          .dbapi_connection, .close() (rolls back), .invalidate()
        execution_options(**_)    itself: the options only steer SQLAlchemy's own BEGIN
        dispose()                 closes the idle connections
    tune_sqlite(conn)     the pragmas every SQLite connection gets (kernel.db.make_engine's too)
    placeholders(sql, pg) `?` placeholders in the driver's style (psycopg: `%s`)

SQLAlchemy's import is ~0.25 s, most of a read-only command's start. The ledger's
reads, the outbox's and the task list already run hand-written SQL on the DB-API
cursor, so on a SQLite file whose schema is at head they run the same statements
here, and `selfpub ledger report` and `drafts list` never import SQLAlchemy.
Nothing here migrates: daemon/state.py opens a PlainEngine only after
kernel.versions found every history at head, and SQLAlchemy's path otherwise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

SQLITE_BUSY_TIMEOUT_MS = 30_000
# WAL pages between automatic checkpoints (SQLite's default: 1,000). Each checkpoint fsyncs the database in the
# committing writer; a ledger write is ~18 pages, so the default paid that fsync every ~55 reserve+commit pairs.
# 10,000 pages (~40 MB of WAL at most) pays it ten times less often (bench/README.md, bench_ledger.py).
SQLITE_WAL_AUTOCHECKPOINT = 10_000
SQLITE_SCHEMES = ("sqlite:///", "sqlite+pysqlite:///")


def tune_sqlite(dbapi_conn: sqlite3.Connection) -> None:
    """WAL, the busy timeout, foreign keys, NORMAL sync and the checkpoint interval, on a new connection."""
    # Autocommit at the driver: the caller's BEGIN (SQLAlchemy's, or BEGIN IMMEDIATE where a
    # write lock must be held up front) is the one that starts a transaction.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
    cur.close()


def placeholders(sql: str, pg: bool) -> str:
    """`sql` written with `?` placeholders, in the driver's style (psycopg wants `%s`)."""
    return sql.replace("?", "%s") if pg else sql


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, or None for anything else (PostgreSQL, a query string, an escape)."""
    scheme = next((s for s in SQLITE_SCHEMES if url.startswith(s)), None)
    if scheme is None:
        return None
    path = url[len(scheme):]
    if not path or path == ":memory:" or "?" in path or "%" in path:
        return None  # SQLAlchemy would read options or unquote: leave it to SQLAlchemy's path
    return Path(path)


class _Lease:
    """One connection taken from a PlainEngine (SQLAlchemy's "connection fairy", the part we use)."""

    def __init__(self, engine: PlainEngine, conn: sqlite3.Connection):
        self._engine = engine
        self.dbapi_connection: sqlite3.Connection | None = conn

    def cursor(self) -> sqlite3.Cursor:
        """A cursor on the connection."""
        assert self.dbapi_connection is not None, "the connection was given back"
        return self.dbapi_connection.cursor()

    def close(self) -> None:
        """Give the connection back, rolling back whatever transaction is open (as SQLAlchemy's pool does)."""
        conn, self.dbapi_connection = self.dbapi_connection, None
        if conn is None:
            return
        if conn.in_transaction:
            conn.rollback()
        self._engine._idle.append(conn)

    def invalidate(self) -> None:
        """Close the connection instead of giving it back (it is broken)."""
        conn, self.dbapi_connection = self.dbapi_connection, None
        if conn is not None:
            conn.close()


class PlainEngine:
    """A SQLite file on the stdlib sqlite3, standing in for SQLAlchemy's Engine where only raw cursors are used."""

    dialect = SimpleNamespace(name="sqlite", loaded_dbapi=sqlite3)

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._idle: list[sqlite3.Connection] = []

    def __repr__(self) -> str:
        return f"PlainEngine({str(self.path)!r})"

    def raw_connection(self) -> _Lease:
        """A connection (an idle one, or a new one tuned as make_engine tunes them); close() gives it back."""
        if self._idle:
            return _Lease(self, self._idle.pop())
        conn = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        tune_sqlite(conn)
        return _Lease(self, conn)

    @contextmanager
    def connect(self) -> Iterator[SimpleNamespace]:
        """A connection for a block: `conn.connection.cursor()` as on a SQLAlchemy Connection."""
        lease = self.raw_connection()
        try:
            yield SimpleNamespace(connection=lease)
        finally:
            lease.close()

    def execution_options(self, **_options: object) -> PlainEngine:
        """Itself: execution options steer SQLAlchemy's BEGIN, and nothing here begins but the caller's SQL."""
        return self

    def dispose(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._idle.pop().close()
