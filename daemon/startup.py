"""The one place a command that cannot start because of its configuration or environment says why.

    ConfigError                      -> every problem, one per line, key and fix      exit 1
    sqlalchemy OperationalError      -> "cannot open the database <url, password masked>: <reason>"
    sqlite3 OperationalError         -> the same (a read-only command at head reads on the stdlib sqlite3)
    sqlalchemy ArgumentError         -> "database.url ... cannot be used: <reason>"
    payments PaymentsError           -> "paid reads cannot start: <reason naming the key and the fix>"
    anything else                    -> not ours: a bug, raised as it is

`CleanErrorsGroup` is the root command's click group: every subcommand runs inside
its invoke, so a CLI command never prints a Python traceback for these.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.markup import escape
from typer.core import TyperGroup

from daemon.context import err_console, print_config_error

if TYPE_CHECKING:
    from typer import Context

# Errors a command may meet before it can do anything: the config, the database, the state dir.
# Named by module, not imported: `selfpub --help` must not pay for SQLAlchemy and pydantic, and an
# error class whose module was never imported cannot have been raised.
STARTUP_ERRORS = (("config.loader", "ConfigError"), ("sqlalchemy.exc", "OperationalError"),
                  ("sqlite3", "OperationalError"), ("sqlalchemy.exc", "ArgumentError"),
                  ("payments.x402", "PaymentsError"))
DATABASE_FIX = ("check database.url (or SELFPUB_DATABASE__URL), that the server is running and reachable, and "
                "that the user may connect; `selfpub config check` validates the rest")


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (a driver's error, without SQLAlchemy's footer)."""
    inner = getattr(exc, "orig", None) or exc
    for line in str(inner).splitlines():
        if line.strip():
            return line.strip()
    return type(inner).__name__


def startup_error_types() -> tuple[type[BaseException], ...]:
    """The STARTUP_ERRORS classes among the modules this process has imported."""
    found = []
    for module, name in STARTUP_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


def _is(exc: BaseException, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


def explain(exc: BaseException, database_url: str | None = None) -> NoReturn:
    """Print `exc` (one of STARTUP_ERRORS) as a clear message on stderr and exit 1."""
    if _is(exc, "config.loader", "ConfigError"):
        print_config_error(exc)  # type: ignore[arg-type]
    elif _is(exc, "sqlalchemy.exc", "OperationalError") or _is(exc, "sqlite3", "OperationalError"):
        from config.checks import mask_password

        where = f" {mask_password(database_url)}" if database_url else ""
        err_console.print(f"[bold red]cannot open the database{escape(where)}[/]: {escape(first_line(exc))}\n"
                          f"      fix: {escape(DATABASE_FIX)}", highlight=False)
    elif _is(exc, "payments.x402", "PaymentsError"):
        err_console.print(f"[bold red]paid reads cannot start[/]: {escape(first_line(exc))}", highlight=False)
    else:
        err_console.print(f"[bold red]database.url cannot be used[/]: {escape(first_line(exc))}\n"
                          f"      fix: {escape(DATABASE_FIX)}", highlight=False)
    raise typer.Exit(1)


class CleanErrorsGroup(TyperGroup):
    """The root group: start-up errors from any subcommand become a message and exit 1, not a traceback."""

    def invoke(self, ctx: Context) -> Any:  # noqa: ANN401 - whatever the command returns
        """Run the subcommand; explain a configuration or environment error instead of raising it."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not isinstance(exc, startup_error_types()):
                raise
            explain(exc, _database_url(ctx))


def _database_url(ctx: Context) -> str | None:
    """The database URL of this invocation, if its settings were loaded (to name the database in the message)."""
    app = ctx.obj
    settings = getattr(app, "__dict__", {}).get("settings")  # only if already loaded: never load it here
    if settings is None:
        return None
    return settings.database.url or settings.database_url
