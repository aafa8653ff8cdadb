"""A SQLite write lock held by another process is a retryable database error, not a bug."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from kernel.db import make_engine
from daemon.wiring import error_policy
from ledger.journal import Entry, Journal

BUSY_TIMEOUT_MS = 20  # give up on the lock at once instead of after the default 30 s


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite engine on a migrated ledger whose connections wait at most BUSY_TIMEOUT_MS for a lock."""
    engine = make_engine(f"sqlite:///{tmp_path / 'selfpub.db'}")
    Journal(engine).migrate()
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn, _record) -> None:  # noqa: ANN001 - runs after make_engine's own PRAGMAs
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    yield engine
    engine.dispose()


@pytest.fixture
def locked(tmp_path: Path, impatient: Engine) -> Iterator[sqlite3.Connection]:
    """Another connection (as another process would) holding the write lock with BEGIN IMMEDIATE."""
    other = sqlite3.connect(tmp_path / "selfpub.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def test_post_in_under_a_held_write_lock_raises_sqlalchemys_operational_error(impatient: Engine, locked) -> None:  # noqa: ANN001
    journal = Journal(impatient)
    entries = [Entry("expenses:compute:writer", 50), Entry("liabilities:provider:fake", -50)]
    started = time.monotonic()
    with pytest.raises(OperationalError) as caught, impatient.begin() as conn:
        journal.post_in(conn, "compute", entries, idempotency_key="locked-1")
    assert time.monotonic() - started < 5  # the tiny busy timeout, not the default 30 s
    assert isinstance(caught.value.orig, sqlite3.OperationalError)  # the driver's error, kept as .orig
    assert error_policy().classify(caught.value) == "retryable"


def test_the_same_post_succeeds_once_the_lock_is_released(impatient: Engine, locked) -> None:  # noqa: ANN001
    journal = Journal(impatient)
    entries = [Entry("expenses:compute:writer", 50), Entry("liabilities:provider:fake", -50)]
    with pytest.raises(OperationalError), impatient.begin() as conn:
        journal.post_in(conn, "compute", entries, idempotency_key="locked-1")
    locked.execute("ROLLBACK")
    with impatient.begin() as conn:
        journal.post_in(conn, "compute", entries, idempotency_key="locked-1")
    assert journal.balance("liabilities:provider:fake") == -50


def test_a_raw_driver_error_would_be_classified_as_a_bug() -> None:
    """Why post_in must translate: the daemon's policy knows SQLAlchemy's type, not the driver's."""
    assert error_policy().classify(sqlite3.OperationalError("database is locked")) == "bug"
