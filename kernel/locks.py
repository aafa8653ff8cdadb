"""A try-lock across processes that dies with its holder: the one shape of every single-flight rule.

    TryLock(engine, space, name, path)
      PostgreSQL  pg_try_advisory_lock(space, key(name, schema)) on a connection held while the
                  lock is; the server ends the lock with the session, so a killed holder frees it
                  at once. The key hashes the name and the current schema: one lock per database.
      SQLite      fcntl.flock on `path` (beside the database file, or in the state dir); the kernel
                  drops it with the process. An in-memory database lives in one process: a
                  threading lock per name will do.
      acquire()   never waits: False when another holder has it
      still_held()  re-proves a PostgreSQL lock on the server (its session may have dropped)

Used by the persona's cycle lock (daemon/lock.py) and settlement (wallet/settlelock.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from kernel.db import is_postgres

_LOCALS: dict[tuple[int, str], threading.Lock] = {}
_LOCALS_GUARD = threading.Lock()


def lock_key(space: int, name: str, schema: str) -> int:
    """A stable signed 32-bit key for `name` in one schema (the second int of a two-int advisory lock)."""
    digest = hashlib.blake2b(f"selfpub:{space}:{name}:{schema}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _local(space: int, name: str) -> threading.Lock:
    with _LOCALS_GUARD:
        return _LOCALS.setdefault((space, name), threading.Lock())


class TryLock:
    """A named try-lock on one database; `acquire()` never waits."""

    def __init__(self, engine: Engine, space: int, name: str, path: Path | None):
        self.engine = engine
        self.space = space  # the first int of the advisory lock: one key space per kind of lock
        self.name = name
        self.path = path  # the SQLite lock file; None for an in-memory database
        self._conn: Connection | None = None
        self._key: int | None = None
        self._fd: int | None = None
        self._local: threading.Lock | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._conn is not None or self._fd is not None or self._local is not None

    def acquire(self) -> bool:
        """Take the lock if free; False when another holder has it."""
        if self.held:
            return True
        if is_postgres(self.engine):
            return self._acquire_pg()
        if self.path is None:
            local = _local(self.space, self.name)
            if not local.acquire(blocking=False):
                return False
            self._local = local
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
            key = lock_key(self.space, self.name, str(conn.execute(text("SELECT current_schema()")).scalar()))
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": self.space, "k": key}).scalar())
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

    def still_held(self) -> bool:
        """True when this object holds the lock now (PostgreSQL asks the server: a dropped session lost it)."""
        if self._conn is None:
            return self.held
        try:
            held = self._conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                     "AND classid::bigint = :c AND objid::bigint = :k AND objsubid = 2 AND granted"),
                {"c": self.space & 0xFFFFFFFF, "k": self._key & 0xFFFFFFFF},
            ).scalar()
            self._conn.commit()
        except Exception:  # noqa: BLE001 - a broken session holds nothing
            return False
        return bool(held)

    def release(self) -> None:
        """Give the lock back (safe to call when not held)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": self.space, "k": self._key})
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
        if self._local is not None:
            local, self._local = self._local, None
            local.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
