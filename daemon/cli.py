"""The `selfpub` command: thin commands that call room APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from daemon.commands import (
    config_cmd,
    cycle_cmd,
    demo_cmd,
    drafts_cmd,
    ledger_cmd,
    llm_cmd,
    publish_cmd,
    run_cmd,
    wallet_cmd,
)
from daemon.context import AppContext
from daemon.startup import CleanErrorsGroup

app = typer.Typer(
    name="selfpub",
    help="An autonomous, self-funding publishing daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=CleanErrorsGroup,  # a configuration or environment problem prints a message, never a traceback
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
    ctx.obj = AppContext(config_path=config, credentials_dir=credentials)


config_cmd.register(app)
ledger_cmd.register(app)
wallet_cmd.register(app)
publish_cmd.register(app)
llm_cmd.register(app)
cycle_cmd.register(app)
drafts_cmd.register(app)
run_cmd.register(app)
demo_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
