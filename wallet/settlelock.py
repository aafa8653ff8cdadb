"""Settlement is single-flight per database, across processes: a try-lock that dies with its holder.

    PostgreSQL  pg_try_advisory_lock(class, key) on a connection held for the whole run; the
                server ends the lock with the session, so a killed holder frees it at once.
                key = hash of the current schema: one ledger, one lock.
    SQLite      fcntl.flock on <database file>.settle.lock; the kernel drops it with the process.

Why per database and not per chain or sender: what is owed (liabilities:provider:*)
lives in the ledger, which every persona and every sender on the database share;
two runs paying from two senders would pay the same liability twice just as well.

`check()` re-proves the lock is still held right before a payment is signed: a
PostgreSQL session that dropped (and with it the lock) must not go on to pay.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from kernel.db import is_postgres
from wallet.errors import PaymentRefused

SETTLE_LOCK_CLASS = 0x5E77  # first key of the two-int advisory lock: settlement's own key space
_LOCAL = threading.Lock()  # an in-memory SQLite database lives in one process: a plain lock will do


def schema_key(schema: str) -> int:
    """A stable signed 32-bit key for one schema's settle lock."""
    return int.from_bytes(hashlib.blake2b(f"selfpub:settle:{schema}".encode(), digest_size=4).digest(), "big", signed=True)


class SettleLock:
    """Try-lock for settlement on one database; `acquire()` never waits."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Connection | None = None
        self._key: int | None = None
        self._fd: int | None = None
        self._local = False

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._conn is not None or self._fd is not None or self._local

    def path(self) -> Path | None:
        """The lock file of a SQLite database file (None for an in-memory one)."""
        db = self.engine.url.database
        if not db or db == ":memory:" or db.startswith("file::memory:"):
            return None
        db_path = Path(db)
        return db_path.with_name(db_path.name + ".settle.lock")

    def acquire(self) -> bool:
        """Take the lock if free; False when another run holds it."""
        if self.held:
            return True
        if is_postgres(self.engine):
            return self._acquire_pg()
        path = self.path()
        if path is None:
            self._local = _LOCAL.acquire(blocking=False)
            return self._local
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _acquire_pg(self) -> bool:
        conn = self.engine.connect()
        try:
            key = schema_key(str(conn.execute(text("SELECT current_schema()")).scalar()))
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": SETTLE_LOCK_CLASS, "k": key}).scalar())
            conn.commit()  # the session lock outlives the transaction
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self._key = conn, key
        return True

    def check(self) -> None:
        """Refuse (reason lock_lost) unless this object still holds the lock (PostgreSQL asks the server)."""
        if self._conn is not None:
            held = self._conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                     "AND classid::bigint = :c AND objid::bigint = :k AND objsubid = 2 AND granted"),
                {"c": SETTLE_LOCK_CLASS & 0xFFFFFFFF, "k": self._key & 0xFFFFFFFF},
            ).scalar()
            self._conn.commit()
            if held:
                return
        elif self._fd is not None or self._local:
            return
        raise PaymentRefused("lock_lost", "the settle lock is no longer held (its database session ended); "
                             "this run stops before paying, the next one starts afresh")

    def release(self) -> None:
        """Give the lock back (safe to call when not held)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": SETTLE_LOCK_CLASS, "k": self._key})
                conn.commit()
            except Exception:  # noqa: BLE001
                # A broken connection: discard it so the server ends the session (and the lock).
                conn.invalidate()
            finally:
                conn.close()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if self._local:
            self._local = False
            _LOCAL.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
