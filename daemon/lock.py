"""Per-persona cycle lock: one instance at a time runs a persona's cycle.

PostgreSQL: a session advisory lock (pg_try_advisory_lock) held on a
dedicated connection for the whole cycle; it dies with the connection, so a
crashed daemon never leaves it behind. SQLite: an fcntl file lock in the
state dir (SQLite is one machine by nature). The lock itself is
kernel.locks.TryLock, shared with settlement's.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from kernel.locks import TryLock

CYCLE_LOCK_SPACE = 0x5E1C  # the first int of the two-int advisory lock: the cycle locks' own key space


class CycleLock(TryLock):
    """Try-lock for one persona's cycle; `acquire()` never waits."""

    def __init__(self, engine: Engine, persona: str, state_dir: Path):
        super().__init__(engine, CYCLE_LOCK_SPACE, persona, Path(state_dir) / f"cycle-{persona}.lock")
        self.persona = persona
