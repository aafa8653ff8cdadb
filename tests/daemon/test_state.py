"""daemon.state.open_state: one assembly of engine, every room's tables, journal and budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import inspect

from config.settings import Settings
from daemon.state import ROOM_HISTORIES, migrations, open_state
from kernel.db import History

REPO = Path(__file__).resolve().parents[2]
# A table of each room, made by the room's own history.
ROOM_TABLES = {"ledger_txn", "wallet_sync", "publishers_outbox", "task", "research_seen_item", "llm_call",
               "daemon_job_run"}


def _settings(tmp_path: Path, url: str | None) -> Settings:
    return Settings(state_dir=tmp_path / "state", **({"database": {"url": url}} if url else {}))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_fresh_database_gets_every_rooms_tables_and_a_second_open_migrates_nothing(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    settings = _settings(tmp_path, url)
    state = open_state(settings)
    tables = set(inspect(state.engine).get_table_names())
    assert ROOM_TABLES <= tables, ROOM_TABLES - tables
    assert {h.version_table for h in ROOM_HISTORIES} <= tables
    assert state.journal.engine is state.engine and state.budget.journal is state.journal
    assert migrations().behind(state.engine) == []
    state.engine.dispose()
    again = open_state(settings)
    assert migrations().upgrade(again.engine) == []  # every version at head: Alembic does not run
    again.engine.dispose()


def test_a_second_open_does_not_load_alembic(tmp_path: Path):
    """Opening a database at head costs one read of the version tables, no Alembic (a fresh process checks)."""
    settings = _settings(tmp_path, None)
    open_state(settings).engine.dispose()
    script = textwrap.dedent(f"""
        import sys
        from config.settings import Settings
        from daemon.state import open_state
        state = open_state(Settings(state_dir={str(settings.state_dir)!r}))
        state.budget.available()
        print("alembic loaded:", "alembic" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "alembic loaded: False"


def test_every_migration_folder_is_a_registered_history():
    """A room that adds an Alembic history is opened with the others (and each matches the room's own constants)."""
    folders = {p.parent for p in REPO.glob("*/**/env.py") if (p.parent / "versions").is_dir()
               and not p.is_relative_to(REPO / "tests") and ".venv" not in p.parts and "build" not in p.parts}
    assert {h.script_location for h in ROOM_HISTORIES} == folders
    from agents import research_store, tasks
    from agents.llm import calllog
    from daemon import models
    from ledger import journal
    from publishers import outbox
    from wallet import wallets

    declared = {History(Path(m.MIGRATIONS).resolve(), m.VERSION_TABLE)
                for m in (journal, wallets, outbox, tasks, research_store, calllog, models)}
    assert declared == {History(h.script_location.resolve(), h.version_table) for h in ROOM_HISTORIES}
