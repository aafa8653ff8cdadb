"""Settlement is single-flight per database, across processes: a try-lock that dies with its holder.

    PostgreSQL  pg_try_advisory_lock(space, key) on a connection held for the whole run; the
                server ends the lock with the session, so a killed holder frees it at once.
                key = hash of the current schema: one ledger, one lock.
    SQLite      fcntl.flock on <database file>.settle.lock; the kernel drops it with the process.

(The lock itself is kernel.locks.TryLock, shared with the persona's cycle lock.)

Why per database and not per chain or sender: what is owed (liabilities:provider:*)
lives in the ledger, which every persona and every sender on the database share;
two runs paying from two senders would pay the same liability twice just as well.

`check()` re-proves the lock is still held right before a payment is signed: a
PostgreSQL session that dropped (and with it the lock) must not go on to pay.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from kernel.locks import TryLock
from wallet.errors import PaymentRefused

SETTLE_LOCK_SPACE = 0x5E77  # the first int of the two-int advisory lock: settlement's own key space


def lock_file(engine: Engine) -> Path | None:
    """The lock file of a SQLite database file (None for an in-memory one or PostgreSQL)."""
    db = engine.url.database
    if not db or db == ":memory:" or db.startswith("file::memory:") or engine.dialect.name != "sqlite":
        return None
    db_path = Path(db)
    return db_path.with_name(db_path.name + ".settle.lock")


class SettleLock(TryLock):
    """Try-lock for settlement on one database; `acquire()` never waits."""

    def __init__(self, engine: Engine):
        super().__init__(engine, SETTLE_LOCK_SPACE, "settle", lock_file(engine))

    def check(self) -> None:
        """Refuse (reason lock_lost) unless this object still holds the lock (PostgreSQL asks the server)."""
        if not self.still_held():
            raise PaymentRefused("lock_lost", "the settle lock is no longer held (its database session ended); "
                                 "this run stops before paying, the next one starts afresh")
