"""kernel.db: one registry of every room's history; Alembic runs only for a history behind its head."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from kernel.db import History, Migrations, make_engine

REPO = Path(__file__).resolve().parents[2]


def test_a_history_is_found_by_package_and_names_its_version_table():
    ledger = History.of("ledger")
    assert ledger.script_location == REPO / "ledger" / "migrations"
    assert ledger.version_table == "alembic_version_ledger"
    tasks = History.of("agents", "migrations_tasks")
    assert (tasks.script_location.name, tasks.version_table) == ("migrations_tasks", "alembic_version_agents_tasks")
    with pytest.raises(LookupError):
        History.of("no_such_room_xyz")


def test_heads_read_as_text_match_alembics(tmp_path: Path):
    from alembic.script import ScriptDirectory

    from daemon.state import ROOM_HISTORIES

    for history in ROOM_HISTORIES:
        alembic_heads = set(ScriptDirectory(str(history.script_location)).get_heads())
        assert history.heads == alembic_heads, history
    # a merge revision (a tuple of parents) and two heads
    versions = tmp_path / "m" / "versions"
    versions.mkdir(parents=True)
    (versions / "a.py").write_text("revision = 'a'\ndown_revision = None\n")
    (versions / "b.py").write_text("revision: str = \"b\"\ndown_revision = 'a'\n")
    (versions / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    assert History(tmp_path / "m", "v").heads == {"b", "c"}
    (versions / "d.py").write_text("revision = 'd'\ndown_revision = ('b', 'c')\n")
    assert History(tmp_path / "m", "v").heads == {"d"}


def test_a_version_table_is_registered_once():
    registry = Migrations([History.of("ledger")])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(History(Path("elsewhere"), "alembic_version_ledger"))


def _tables(engine) -> set[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def _scratch_revision(folder: Path, rev: str, down: str | None) -> None:
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "env.py").write_text("from kernel.db import run_migrations_env\nrun_migrations_env(None)\n")
    (folder / "versions" / f"{rev}.py").write_text(textwrap.dedent(f"""
        from alembic import op
        import sqlalchemy as sa
        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None
        def upgrade():
            op.create_table("scratch_{rev}", sa.Column("id", sa.Integer, primary_key=True))
        def downgrade():
            op.drop_table("scratch_{rev}")
    """))


def test_upgrade_runs_alembic_only_for_what_is_behind(db_url: str, tmp_path: Path):
    ledger, scratch = History.of("ledger"), History(tmp_path / "scratch", "alembic_version_scratch")
    _scratch_revision(scratch.script_location, "s1", None)
    engine = make_engine(db_url)
    registry = Migrations([ledger, scratch])
    assert registry.behind(engine) == [ledger, scratch]  # a fresh database: no version table yet
    assert registry.upgrade(engine) == [ledger, scratch]
    assert {"ledger_txn", "scratch_s1", ledger.version_table, scratch.version_table} <= _tables(engine)
    assert registry.stored(engine) == {ledger.version_table: ledger.heads, scratch.version_table: {"s1"}}
    assert registry.upgrade(engine) == []  # at head: Alembic is not run
    # newer code brings a revision for one room: only that history is upgraded
    _scratch_revision(scratch.script_location, "s2", "s1")
    registry = Migrations([History.of("ledger"), History(scratch.script_location, scratch.version_table)])
    assert [h.version_table for h in registry.behind(engine)] == [scratch.version_table]
    assert len(registry.upgrade(engine)) == 1
    assert "scratch_s2" in _tables(engine)
    assert registry.upgrade(engine) == []
    engine.dispose()


def test_a_database_at_head_never_imports_alembic(sqlite_url: str):
    """Alembic's import and run are the slow part of opening; at head neither happens (checked in a fresh process)."""
    script = textwrap.dedent(f"""
        import sys
        from kernel.db import History, Migrations, make_engine
        registry = Migrations([History.of("ledger"), History.of("agents", "migrations_tasks")])
        engine = make_engine({sqlite_url!r})
        first = registry.upgrade(engine)
        assert len(first) == 2 and "alembic" in sys.modules, first
        for name in [m for m in sys.modules if m == "alembic" or m.startswith("alembic.")]:
            del sys.modules[name]
        assert registry.upgrade(make_engine({sqlite_url!r})) == []
        print("alembic imported again:", "alembic" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alembic imported again: False"


def test_sqlite_connections_checkpoint_every_10000_wal_pages(sqlite_url: str):
    """A ledger write is ~18 WAL pages: SQLite's default (1,000) put a checkpoint's fsync in a writer every ~55 pairs."""
    from kernel.db import SQLITE_WAL_AUTOCHECKPOINT

    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SQLITE_WAL_AUTOCHECKPOINT == 10_000
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


# -- kernel.dbapi: a SQLite file on the stdlib sqlite3 (read-only commands at head) ------------------------------

_PRAGMAS = ("journal_mode", "busy_timeout", "foreign_keys", "synchronous", "wal_autocheckpoint")


def test_plain_connections_are_tuned_as_make_engines(sqlite_url: str):
    from kernel.dbapi import PlainEngine, sqlite_file

    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        expected = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in _PRAGMAS}
    engine.dispose()
    plain = PlainEngine(sqlite_file(sqlite_url))
    with plain.connect() as conn:
        cur = conn.connection.cursor()
        got = {p: cur.execute(f"PRAGMA {p}").fetchone()[0] for p in _PRAGMAS}
    plain.dispose()
    assert got == expected == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1, "synchronous": 1,
                               "wal_autocheckpoint": 10_000}


def test_a_plain_connection_is_given_back_rolled_back(sqlite_url: str):
    """As SQLAlchemy's pool: a connection returns to the engine, and a transaction left open does not survive it."""
    from kernel.dbapi import PlainEngine, sqlite_file

    plain = PlainEngine(sqlite_file(sqlite_url))
    lease = plain.raw_connection()
    conn = lease.dbapi_connection
    cur = lease.cursor()
    cur.execute("CREATE TABLE t (x INTEGER)")
    cur.execute("BEGIN IMMEDIATE")
    cur.execute("INSERT INTO t VALUES (1)")
    lease.close()
    again = plain.raw_connection()
    assert again.dbapi_connection is conn and not conn.in_transaction
    assert again.cursor().execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    again.invalidate()  # a broken connection is closed, not given back
    fresh = plain.raw_connection()
    assert fresh.dbapi_connection is not conn
    fresh.close()
    plain.dispose()


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:////var/lib/selfpub/selfpub.db", "/var/lib/selfpub/selfpub.db"),
    ("sqlite+pysqlite:////srv/a.db", "/srv/a.db"),
    ("sqlite:///relative.db", "relative.db"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("sqlite:////srv/a.db?mode=ro", None),  # options: SQLAlchemy's path reads them
    ("sqlite:////srv/a%20b.db", None),  # an escape: SQLAlchemy's path unquotes it
    ("postgresql+psycopg://selfpub@127.0.0.1:5432/selfpub", None),
])
def test_only_a_plain_sqlite_file_url_is_read_without_sqlalchemy(url: str, path: str | None):
    from kernel.dbapi import sqlite_file

    assert sqlite_file(url) == (Path(path) if path else None)
