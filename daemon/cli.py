"""The `selfpub` command: thin commands that call room APIs.

Start-up is paid per invocation, so nothing is imported before it is needed:

    selfpub --help          typer and rich only: the command list below is text, no module is imported
    selfpub ledger report   daemon.commands.ledger_cmd, then what `report` itself imports
                            (settings, the database, the ledger) inside its function

COMMANDS names each top-level command, the module whose register(app) adds it,
and its one-line help (a test holds each line to the command's own docstring).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from typer.core import TyperCommand

from daemon.startup import CleanErrorsGroup

if TYPE_CHECKING:
    from typer import Context

# name -> (module with register(app), one-line help shown by `selfpub --help`), in the order --help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("daemon.commands.config_cmd", "Check and show the configuration."),
    "init": ("daemon.commands.config_cmd", "Write a commented selfpub.toml and create its state dir."),
    "ledger": ("daemon.commands.ledger_cmd", "The money: balances, reports, exports."),
    "wallet": ("daemon.commands.wallet_cmd", "On-chain credits: balance, tips, settlement, reconciliation."),
    "publish": ("daemon.commands.publish_cmd",
                "Publish a hand-written post exactly once (same outbox, limits and idempotency as the agents)."),
    "llm": ("daemon.commands.llm_cmd", "The language models: the embedded server and the call log."),
    "cycle": ("daemon.commands.cycle_cmd", "Run one cycle now and print what it did and what it cost."),
    "drafts": ("daemon.commands.drafts_cmd", "Drafts held for approval (approval = manual | risky)."),
    "run": ("daemon.commands.run_cmd", "Run the scheduler, the pause/resume loop and the status server until SIGTERM."),
    "demo": ("daemon.commands.demo_cmd",
             "Fund the agent on the embedded chain, run cycles until it pauses, tip it, watch it resume."),
}


def load_command(name: str) -> TyperCommand:
    """The click command `name`, built from its module's register(app) (the module is imported now)."""
    module = importlib.import_module(COMMANDS[name][0])
    holder = typer.Typer()
    module.register(holder)
    command = typer.main.get_group(holder).commands[name]
    command.name = name
    return command


class LazyGroup(CleanErrorsGroup):
    """The root group: lists COMMANDS from text, imports a command's module only to run (or show) that command."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> TyperCommand | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        if ctx.resilient_parsing or _listing_help(ctx):
            # --help of the root lists every command: its name and help line, nothing imported
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])
        self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: Context, formatter: Any) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta[_LISTING] = False


_LISTING = "selfpub.listing_help"


def _listing_help(ctx: Context) -> bool:
    return bool(ctx.meta.get(_LISTING))


app = typer.Typer(
    name="selfpub",
    help="An autonomous, self-funding publishing daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,  # configuration or environment problems print a message, never a traceback (CleanErrorsGroup)
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"selfpub {version('selfpub')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("selfpub (not installed: run `pip install .` in the checkout)")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--config", "-c", help="Config file (default: $SELFPUB_CONFIG, ./selfpub.toml, /etc/selfpub/selfpub.toml)."
    ),
    _show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
    credentials: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--credentials", metavar="DIR",
        help="Folder of credential files: relative *_file names in the config resolve here "
             "(as $CREDENTIALS_DIRECTORY under systemd)."),
) -> None:
    from daemon.context import AppContext

    ctx.obj = AppContext(config_path=config, credentials_dir=credentials)


def main() -> None:
    """Console-script entry point."""
    # selfpub uses no pydantic plugin: skip their discovery, a scan of every installed distribution's
    # entry points at the first model each command builds (~10-25 ms of a 0.3 s start). A user may still set it.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()


if __name__ == "__main__":
    main()
