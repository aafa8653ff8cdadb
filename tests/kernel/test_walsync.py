"""The WAL written back in a background thread: woken every N commits, the WAL's own file synced, gone when idle."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from kernel.db import make_engine
from kernel.walsync import EVERY_WRITES, WalWriteback, wal_writeback
from ledger import Entry, Journal


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files os.fdatasync was called on, by path (read back through /proc: Linux)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd")
    paths: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    return paths


def wait_until(check, seconds: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def wal_database(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    db = tmp_path / "w.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    return db, conn


def writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wal-writeback")]


def test_every_nth_commit_syncs_the_wal_in_a_thread_that_ends_when_idle(tmp_path: Path, synced: list[str]) -> None:
    db, conn = wal_database(tmp_path)
    wb = WalWriteback(db, every=3, idle=0.1)
    wb.wrote()
    wb.wrote()
    assert wb.syncs == 0 and wb._thread is None  # not yet the third
    wb.wrote()
    wait_until(lambda: wb.syncs == 1)
    assert synced == [f"{db}-wal"]  # the WAL itself, not the database (its checkpoint syncs that)
    wait_until(lambda: wb._thread is None)  # idle: the thread ended
    for _ in range(3):
        wb.wrote()
    wait_until(lambda: wb.syncs == 2)  # and a new one starts on the next wake-up
    conn.close()


def test_a_missing_wal_is_skipped(tmp_path: Path, synced: list[str]) -> None:
    wb = WalWriteback(tmp_path / "gone.db", every=1, idle=0.05)
    wb.wrote()
    wait_until(lambda: wb._thread is None)
    assert wb.syncs == 0 and synced == []


def test_a_journal_on_a_sqlite_file_writes_its_wal_back(tmp_path: Path, synced: list[str]) -> None:
    db = tmp_path / "ledger.db"
    journal = Journal(make_engine(f"sqlite:///{db}"))
    journal.migrate()
    assert journal._writeback is wal_writeback(db)  # one a file, shared by every Journal on it in this process
    before = journal._writeback.syncs
    for i in range(EVERY_WRITES):
        journal.post("deposit", [Entry("assets:wallet", 5), Entry("equity:opening", -5)], idempotency_key=f"k{i}")
    wait_until(lambda: journal._writeback.syncs > before)
    assert f"{db}-wal" in synced
    assert journal.verify() == []
    journal.engine.dispose()


def test_a_journal_on_postgresql_or_in_memory_has_none(pg_url: str) -> None:
    assert Journal(make_engine(pg_url))._writeback is None
    assert Journal(make_engine("sqlite://"))._writeback is None
