"""The one place a command that cannot start because of its configuration or environment says why.

    ConfigError                      -> every problem, one per line, key and fix      exit 1
    sqlalchemy OperationalError      -> "cannot open the database <url, password masked>: <reason>"
    sqlalchemy ArgumentError         -> "database.url ... cannot be used: <reason>"
    anything else                    -> not ours: a bug, raised as it is

`CleanErrorsGroup` is the root command's click group: every subcommand runs inside
its invoke, so a CLI command never prints a Python traceback for these.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click
import typer
from rich.markup import escape
from sqlalchemy.exc import ArgumentError, OperationalError
from typer.core import TyperGroup

from config import ConfigError
from config.checks import mask_password
from daemon.context import err_console, print_config_error

# Errors a command may meet before it can do anything: the config, the database, the state dir.
STARTUP_ERRORS = (ConfigError, OperationalError, ArgumentError)
DATABASE_FIX = ("check database.url (or SELFPUB_DATABASE__URL), that the server is running and reachable, and "
                "that the user may connect; `selfpub config check` validates the rest")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (a driver's error, without SQLAlchemy's footer)."""
    inner = getattr(exc, "orig", None) or exc
    for line in str(inner).splitlines():
        if line.strip():
            return line.strip()
    return type(inner).__name__


def explain(exc: BaseException, database_url: str | None = None) -> NoReturn:
    """Print `exc` (one of STARTUP_ERRORS) as a clear message on stderr and exit 1."""
    if isinstance(exc, ConfigError):
        print_config_error(exc)
    elif isinstance(exc, OperationalError):
        where = f" {mask_password(database_url)}" if database_url else ""
        err_console.print(f"[bold red]cannot open the database{escape(where)}[/]: {escape(first_line(exc))}\n"
                          f"      fix: {escape(DATABASE_FIX)}", highlight=False)
    else:
        err_console.print(f"[bold red]database.url cannot be used[/]: {escape(first_line(exc))}\n"
                          f"      fix: {escape(DATABASE_FIX)}", highlight=False)
    raise typer.Exit(1)


class CleanErrorsGroup(TyperGroup):
    """The root group: start-up errors from any subcommand become a message and exit 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 - whatever the command returns
        """Run the subcommand; explain a configuration or environment error instead of raising it."""
        try:
            return super().invoke(ctx)
        except STARTUP_ERRORS as exc:
            explain(exc, _database_url(ctx))


def _database_url(ctx: click.Context) -> str | None:
    """The database URL of this invocation, if its settings were loaded (to name the database in the message)."""
    app = ctx.obj
    settings = getattr(app, "__dict__", {}).get("settings")  # only if already loaded: never load it here
    if settings is None:
        return None
    return settings.database.url or settings.database_url
