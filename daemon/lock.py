"""Per-persona cycle lock: one instance at a time runs a persona's cycle.

PostgreSQL: a session advisory lock (pg_try_advisory_lock) held on a
dedicated connection for the whole cycle; it dies with the connection, so a
crashed daemon never leaves it behind. SQLite: an fcntl file lock in the
state dir (SQLite is one machine by nature).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from kernel.db import is_postgres


def lock_key(persona: str) -> int:
    """A stable signed 64-bit advisory-lock key for a persona's cycle."""
    digest = hashlib.blake2b(f"selfpub:cycle:{persona}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class CycleLock:
    """Try-lock for one persona's cycle; `acquire()` never waits."""

    def __init__(self, engine: Engine, persona: str, state_dir: Path):
        self.engine = engine
        self.persona = persona
        self.path = Path(state_dir) / f"cycle-{persona}.lock"
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._conn is not None or self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if free; False when another instance holds it."""
        if self.held:
            return True
        if is_postgres(self.engine):
            conn = self.engine.connect()
            try:
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(self.persona)}).scalar())
                conn.commit()  # the session lock outlives the transaction
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            if not got:
                conn.close()
                return False
            self._conn = conn
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

    def release(self) -> None:
        """Give the lock back (safe to call when not held)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(self.persona)})
                conn.commit()
            except Exception:
                # A broken connection: discard it so the server ends the session (and the lock).
                conn.invalidate()
            finally:
                conn.close()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
