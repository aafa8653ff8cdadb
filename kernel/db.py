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
never loads it. kernel imports no room: rooms name their History
(`History.of("ledger")`) and the composition root (daemon/) passes the list.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
# WAL pages between automatic checkpoints (SQLite's default: 1,000). Each checkpoint fsyncs the database in the
# committing writer; a ledger write is ~18 pages, so the default paid that fsync every ~55 reserve+commit pairs.
# 10,000 pages (~40 MB of WAL at most) pays it ten times less often (bench/README.md, bench_ledger.py).
SQLITE_WAL_AUTOCHECKPOINT = 10_000
MIGRATION_LOCK_KEY = 0x5E1F_9B0B  # pg advisory lock serialising migrations across instances
VERSION_TABLE_PREFIX = "alembic_version_"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


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
        cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


# -- one room's history ------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """One room's Alembic history: its script folder and the version table it keeps."""

    script_location: Path
    version_table: str

    @classmethod
    def of(cls, package: str, folder: str = "migrations") -> History:
        """The history in `package`/`folder`, found without importing the package.

        Its version table is alembic_version_<package with _ for .><what follows "migrations">:
        ledger/migrations -> alembic_version_ledger, agents/migrations_tasks -> alembic_version_agents_tasks.
        """
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise LookupError(f"{package} is not an importable package")
        location = Path(next(iter(spec.submodule_search_locations))) / folder
        table = VERSION_TABLE_PREFIX + package.replace(".", "_") + folder.removeprefix("migrations")
        return cls(location, table)

    @cached_property
    def heads(self) -> frozenset[str]:
        """The head revision(s), read from versions/*.py as text: the revisions nothing revises."""
        revisions: set[str] = set()
        revised: set[str] = set()
        for path in sorted((self.script_location / "versions").glob("*.py")):
            source = path.read_text(encoding="utf-8")
            found = _REVISION.search(source)
            if found is None:
                continue
            revisions.add(found.group(1))
            down = _DOWN_REVISION.search(source)
            if down is not None:
                revised.update(_QUOTED.findall(down.group(1)))
        if not revisions:
            raise LookupError(f"no revisions in {self.script_location / 'versions'}")
        return frozenset(revisions - revised)

    def upgrade(self, engine: Engine) -> None:
        """Alembic upgrade of this history to head (unconditionally: Migrations decides whether)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(self.script_location))
        cfg.attributes["connection_engine"] = engine
        cfg.attributes["version_table"] = self.version_table
        cfg.attributes["configure_logger"] = False
        command.upgrade(cfg, "head")


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
        tables = [h.version_table for h in self.histories]
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names()) & set(tables)
            found: dict[str, set[str]] = {t: set() for t in tables}
            if present:
                union = " UNION ALL ".join(f"SELECT '{t}', version_num FROM {t}" for t in sorted(present))
                for table, version in conn.execute(text(union)):
                    found[table].add(version)
        return {t: frozenset(v) for t, v in found.items()}

    def behind(self, engine: Engine) -> list[History]:
        """The histories whose stored revisions are not their heads."""
        stored = self.stored(engine)
        return [h for h in self.histories if stored[h.version_table] != h.heads]

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
