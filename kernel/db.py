"""The database engine, and one registry of every room's migration history.

Every room owns its tables and its own Alembic history (a version table of
its own), so `ledger/` never imports `publishers/` to migrate. A `History`
names one of them; `Migrations` holds every history an application opens:

    Migrations(histories).upgrade(engine)
        one read    which version tables exist, and the revision each holds
        at head?    each history's head is read from its versions/*.py files (no Alembic)
        behind      only then: Alembic upgrade of that history (under a PostgreSQL
                    advisory lock, so instances starting together migrate once)

Alembic costs ~0.2 s to import and run per history, so a database at head
never loads it. History and the version read live in kernel/versions.py, and
SQLite's connection tuning in kernel/dbapi.py: neither imports SQLAlchemy, so a
read-only command checks the versions and reads on the stdlib sqlite3. kernel imports no room: rooms name their History
(`History.of("ledger")`) and the composition root (daemon/) passes the list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

# SQLite's tuning and the histories live where a read-only command reaches them without SQLAlchemy; names
# re-exported here: `from kernel.db import History, SQLITE_WAL_AUTOCHECKPOINT` still works.
from kernel.dbapi import SQLITE_BUSY_TIMEOUT_MS, SQLITE_WAL_AUTOCHECKPOINT, tune_sqlite  # noqa: F401
from kernel.versions import VERSION_TABLE_PREFIX, History, behind, stored_in  # noqa: F401

MIGRATION_LOCK_KEY = 0x5E1F_9B0B  # pg advisory lock serialising migrations across instances


def make_engine(url: str, *, echo: bool = False, pool: bool = True) -> Engine:
    """An Engine for SQLite (WAL, busy timeout, foreign keys) or PostgreSQL (psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            poolclass=None if pool else NullPool,
        )
        _tune_sqlite(engine)
        return engine
    kwargs = {} if pool else {"poolclass": NullPool}
    return create_engine(url, echo=echo, pool_pre_ping=True, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        tune_sqlite(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


# -- the registry ------------------------------------------------------------------------------


@dataclass
class Migrations:
    """Every history an application opens; `upgrade` runs Alembic only for those behind their head."""

    histories: list[History] = field(default_factory=list)

    def __post_init__(self) -> None:
        histories, self.histories = list(self.histories), []
        for history in histories:
            self.register(history)

    def register(self, history: History) -> History:
        """Add a room's history (a version table is kept by one history only)."""
        if any(h.version_table == history.version_table for h in self.histories):
            raise ValueError(f"{history.version_table} is already registered")
        self.histories.append(history)
        return history

    def stored(self, engine: Engine) -> dict[str, frozenset[str]]:
        """Version table -> the revisions it holds (empty when the table does not exist): one connection."""
        return stored_in(engine, [h.version_table for h in self.histories])

    def behind(self, engine: Engine) -> list[History]:
        """The histories whose stored revisions are not their heads."""
        return behind(self.histories, engine)

    def upgrade(self, engine: Engine) -> list[History]:
        """Bring every history to head; returns those Alembic ran for (none when all were at head)."""
        if not self.behind(engine):
            return []
        with migration_lock(engine):  # another instance may have migrated while we waited
            behind = self.behind(engine)
            for history in behind:
                history.upgrade(engine)
        return behind


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while migrating (no-op on SQLite, where BEGIN IMMEDIATE serialises)."""
    if not is_postgres(engine):
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()


def open_state(url: str, histories: Iterable[History], *, pool: bool = True) -> Engine:
    """An engine on `url` with every history at head (Alembic runs only for those behind)."""
    engine = make_engine(url, pool=pool)
    Migrations(list(histories)).upgrade(engine)
    return engine


def migrate(engine: Engine, script_location: str | Path, version_table: str) -> None:
    """Upgrade one room's tables to head with its own Alembic history (skipped when already at head)."""
    Migrations([History(Path(script_location), version_table)]).upgrade(engine)


def run_migrations_env(target_metadata) -> None:  # noqa: ANN001
    """The body of every room's Alembic env.py: online upgrade on the given engine."""
    from alembic import context

    cfg = context.config
    engine = cfg.attributes["connection_engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=cfg.attributes["version_table"],
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    # the caller's engine may hold a SQLite connection; keep nothing open
    engine.dispose()
