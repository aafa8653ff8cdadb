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

from config import ConfigError, Settings, load_settings
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
        self.settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return make_engine(self.settings.database_url)

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
