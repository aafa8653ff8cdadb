"""What every CLI command shares: the settings (loaded once) and the opened state store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # each is imported by the property that needs it: `selfpub --help` loads none of them
    from sqlalchemy import Engine

    from config import ConfigError, Settings
    from daemon.state import State
    from kernel.dbapi import PlainEngine
    from ledger import Budget, Journal

err_console = Console(stderr=True, soft_wrap=True)


def print_config_error(exc: ConfigError) -> None:
    """Print every config problem, one per line, to stderr."""
    err_console.print(f"[bold red]{len(exc.problems)} problem(s) in {exc.source or 'the configuration'}:[/]")
    for p in exc.problems:
        err_console.print(f"  [bold]{escape(p.key)}[/]: {escape(p.what)}\n      fix: {escape(p.fix)}", highlight=False)


@dataclass
class AppContext:
    """Lazily built settings and state store (engine, journal, budget) for one CLI invocation."""

    config_path: Path | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    credentials_dir: Path | None = None  # --credentials: where relative credential names resolve
    need_secrets: bool = True  # False for read-only commands: publisher, LLM and wallet credentials unread
    plain: bool = False  # True: every read runs on the raw cursor, so a SQLite file at head opens without SQLAlchemy

    def __post_init__(self) -> None:
        if self.credentials_dir is not None:
            self.environ["CREDENTIALS_DIRECTORY"] = str(self.credentials_dir.resolve())

    def read_only(self, *, plain: bool = False) -> AppContext:
        """Mark this invocation read-only (a report, a list): it needs no publisher, LLM or wallet credential.

        `plain`: the command reads only through raw DB-API cursors (the ledger's reads, publishers.delivered,
        agents.task_rows), so on a SQLite file at head the state opens on the stdlib sqlite3 (daemon/state.py).
        """
        self.need_secrets = False
        self.plain = plain
        return self

    @cached_property
    def settings(self) -> Settings:
        """The settings: validated in full, or for a plain read-only command the snapshot of the last full load.

        config/snapshot.py keeps what a successful load returned, keyed by the config's bytes, the
        variables the loader reads and the code that validates; a plain command (`ledger report`,
        `drafts list`) reads it back without importing pydantic when nothing of that changed.
        """
        from config import snapshot
        from config.dirs import cache_environment, find_config_path

        found = find_config_path(self.config_path, self.environ)
        kept = snapshot.read(found, self.environ) if self.plain and not self.need_secrets else None
        # Under CacheDirectory= matplotlib (imported later, by a plot) keeps its font cache there.
        os.environ.update(cache_environment(self.environ))
        if kept is not None:
            return kept  # type: ignore[return-value] - the same values, read-only, as snapshot.Frozen
        from config import ConfigError, load_settings

        try:
            return snapshot.keep(lambda text: load_settings(found, self.environ, need_secrets=self.need_secrets, text=text),
                                 found, self.environ)
        except ConfigError as exc:
            print_config_error(exc)
            raise typer.Exit(1) from None

    @cached_property
    def state(self) -> State:
        """The state store, opened once per invocation: every room's tables at head (Alembic only if behind)."""
        from daemon.state import open_state

        return open_state(self.settings, source=str(self.config_path or "the configuration"), plain=self.plain)

    @property
    def engine(self) -> Engine | PlainEngine:
        return self.state.engine

    def check_database(self) -> None:
        """Open the state store now, so a wrong URL or a server that is down fails before anything starts."""
        self.state  # noqa: B018 - opening it is the check

    @property
    def journal(self) -> Journal:
        return self.state.journal

    @property
    def budget(self) -> Budget:
        return self.state.budget


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext stored on the root typer context."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
