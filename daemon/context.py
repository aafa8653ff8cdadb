"""What every CLI command shares: the settings (loaded once) and the opened state store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine

from config import ConfigError, Problem, Settings, load_settings
from config.checks import state_dir_fix
from config.db import make_engine
from ledger import Budget, Journal

err_console = Console(stderr=True, soft_wrap=True)


def print_config_error(exc: ConfigError) -> None:
    """Print every config problem, one per line, to stderr."""
    err_console.print(f"[bold red]{len(exc.problems)} problem(s) in {exc.source or 'the configuration'}:[/]")
    for p in exc.problems:
        err_console.print(f"  [bold]{escape(p.key)}[/]: {escape(p.what)}\n      fix: {escape(p.fix)}", highlight=False)


@dataclass
class AppContext:
    """Lazily built settings, engine and ledger objects for one CLI invocation."""

    config_path: Path | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @cached_property
    def settings(self) -> Settings:
        try:
            return load_settings(self.config_path, self.environ)
        except ConfigError as exc:
            print_config_error(exc)
            raise typer.Exit(1) from None

    @cached_property
    def engine(self) -> Engine:
        state_dir = self.settings.state_dir
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:  # the CLI's start-up handler prints this as a config problem
            raise ConfigError([Problem("state_dir", f"cannot create {state_dir}: {exc.strerror}",
                                       state_dir_fix(state_dir))], str(self.config_path or "the configuration")) from None
        try:
            return make_engine(self.settings.database_url)
        except OSError as exc:  # a SQLite file whose folder cannot be created
            raise ConfigError([Problem("database.url", f"cannot create the SQLite file's folder: {exc.strerror}",
                                       "point database.url at a folder the selfpub user can write, or leave it unset")],
                              str(self.config_path or "the configuration")) from None

    def check_database(self) -> None:
        """Open the database once, so a wrong URL or a server that is down fails now, before anything starts."""
        with self.engine.connect():
            pass

    @cached_property
    def journal(self) -> Journal:
        journal = Journal(self.engine)
        journal.migrate()
        return journal

    @cached_property
    def budget(self) -> Budget:
        return Budget(self.journal, self.settings.budget, persona=self.settings.persona)


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext stored on the root typer context."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
