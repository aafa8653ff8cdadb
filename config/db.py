"""One way to open the state database and to run a room's Alembic migrations.

Every room owns its tables and its own migration history (a version table of
its own), so `ledger/` never needs to import `publishers/` to migrate.
This lives in config/ because it is the one room every other may import.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
        # Let SQLAlchemy's BEGIN be the one that starts transactions: we emit
        # BEGIN IMMEDIATE ourselves where a write lock must be held up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def migrate(engine: Engine, script_location: str | Path, version_table: str) -> None:
    """Upgrade one room's tables to head with its own Alembic history."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection_engine"] = engine
    cfg.attributes["version_table"] = version_table
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


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
