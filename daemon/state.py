"""The state store every command and the service open: one engine, every room's tables at head, journal, budget.

    open_state(settings)
        state_dir    created (0700)
        engine       kernel.db.make_engine(settings.database_url)
        migrations   ROOM_HISTORIES through kernel's registry: one read of the version
                     tables; Alembic only for a history behind its head
        journal      ledger.Journal on that engine
        budget       ledger.Budget with the settings' limits and persona

    open_state(settings, plain=True)    a read-only command whose reads all run on the raw cursor
        on a SQLite file where every history is at head (kernel.versions.behind, one read on the
        stdlib sqlite3): the engine is a kernel.dbapi.PlainEngine and SQLAlchemy is never imported;
        otherwise (PostgreSQL, a new database, one behind or newer than the code) as above

This is the only place that knows which rooms keep tables. A history is named
by package (kernel.versions.History.of), so opening the state imports no room that
is not otherwise needed (the wallet's web3, the LLM client's openai).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.problems import ConfigError, Problem
from kernel.dbapi import PlainEngine, sqlite_file
from kernel.versions import History, behind
from ledger.budget import Budget
from ledger.journal import Journal

if TYPE_CHECKING:  # imported by open_engine: the plain path never loads SQLAlchemy (nor pydantic, for Settings)
    from sqlalchemy import Engine

    from config.settings import Settings

    from kernel.db import Migrations

# Every room's Alembic history, in dependency order (the ledger first: others refer to its accounts).
ROOM_HISTORIES = (
    History.of("ledger"),
    History.of("wallet"),
    History.of("publishers"),
    History.of("agents", "migrations_tasks"),
    History.of("agents", "migrations_research"),
    History.of("agents.llm"),
    History.of("daemon"),
)


def migrations() -> Migrations:
    """The registry of every room's history."""
    from kernel.db import Migrations

    return Migrations(list(ROOM_HISTORIES))


@dataclass
class State:
    """The opened state store: engine, journal and budget (every room's tables at head)."""

    engine: Engine | PlainEngine
    journal: Journal
    budget: Budget


def _state_dir(settings: Settings, source: str) -> None:
    """Create the state folder; one that cannot be created is a ConfigError naming the key."""
    state_dir = settings.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        from config.checks import state_dir_fix

        raise ConfigError([Problem("state_dir", f"cannot create {state_dir}: {exc.strerror}",
                                   state_dir_fix(state_dir))], source) from None


def open_engine(settings: Settings, *, source: str = "the configuration") -> Engine:
    """An engine on the settings' database with every room's tables at head (state_dir created).

    A folder that cannot be created is a ConfigError naming the key (`source` names the config file).
    """
    from kernel.db import make_engine

    _state_dir(settings, source)
    try:
        engine = make_engine(settings.database_url)
    except OSError as exc:  # a SQLite file whose folder cannot be created
        raise ConfigError([Problem("database.url", f"cannot create the SQLite file's folder: {exc.strerror}",
                                   "point database.url at a folder the selfpub user can write, or leave it unset")],
                          source) from None
    migrations().upgrade(engine)
    return engine


def open_plain(settings: Settings, *, source: str = "the configuration") -> PlainEngine | None:
    """A PlainEngine on the settings' SQLite file when every history is at head; None when SQLAlchemy's path is due.

    None for PostgreSQL, a URL SQLAlchemy must read, a file not made yet, or a history behind (or ahead of) its head.
    """
    path = sqlite_file(settings.database_url)
    if path is None:
        return None
    _state_dir(settings, source)
    if not path.is_file():
        return None
    engine = PlainEngine(path)
    if behind(ROOM_HISTORIES, engine):
        engine.dispose()
        return None
    return engine


def open_state(settings: Settings, *, source: str = "the configuration", plain: bool = False) -> State:
    """Open the state store once: engine, migrations (only when a version differs), journal and budget.

    `plain`: the caller only reads, through raw cursors (ledger reads, publishers.delivered, agents.task_rows),
    so on a SQLite file at head the engine may be a PlainEngine (the stdlib sqlite3, no SQLAlchemy import).
    """
    engine = (open_plain(settings, source=source) if plain else None) or open_engine(settings, source=source)
    journal = Journal(engine)
    return State(engine, journal, Budget(journal, settings.budget, persona=settings.persona))
