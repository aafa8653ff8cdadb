"""The per-persona cycle lock: PostgreSQL advisory lock, or a file lock with SQLite."""

from __future__ import annotations

from kernel.db import make_engine
from daemon.lock import CycleLock


def test_cycle_lock_is_exclusive_per_persona(db_url, tmp_path) -> None:
    e1, e2 = make_engine(db_url), make_engine(db_url)  # two "instances"
    a = CycleLock(e1, "alice", tmp_path)
    b = CycleLock(e2, "alice", tmp_path)
    other = CycleLock(e2, "bob", tmp_path)
    try:
        assert a.acquire()
        assert not b.acquire()
        assert other.acquire()  # another persona is independent
        a.release()
        assert b.acquire()
        assert not a.acquire()
    finally:
        for lock in (a, b, other):
            lock.release()
        e1.dispose()
        e2.dispose()


def test_a_closed_connection_frees_the_advisory_lock(pg_url, tmp_path) -> None:
    e1, e2 = make_engine(pg_url), make_engine(pg_url)
    a, b = CycleLock(e1, "carol", tmp_path), CycleLock(e2, "carol", tmp_path)
    try:
        assert a.acquire()
        a._conn.invalidate()  # the instance died: its session ends on the server
        a._conn = None
        assert b.acquire()
    finally:
        b.release()
        e1.dispose()
        e2.dispose()
