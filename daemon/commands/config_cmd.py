"""`selfpub init` and `selfpub config check|show`."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from config import ConfigError, find_config_path, load_settings
from daemon.context import app_context, print_config_error
from daemon.redact import Redactor, secret_values

console = Console()
config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)


def example_config_text() -> str:
    """The commented example configuration shipped with selfpub."""
    return files("config").joinpath("selfpub.example.toml").read_text(encoding="utf-8")


@config_app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate the config and print every problem at once, state dir included (exit 1 when there is any)."""
    app = app_context(ctx)
    path = find_config_path(app.config_path, app.environ)
    try:
        settings = load_settings(path, app.environ, probe_state_dir=True)
    except ConfigError as exc:
        print_config_error(exc)
        raise typer.Exit(1) from None
    console.print(f"[green]ok[/]: {path} (state_dir {settings.state_dir})")


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective settings as JSON, every secret-bearing part of every value masked."""
    settings = app_context(ctx).settings
    shown = Redactor(secret_values(settings)).redact_value(settings.model_dump(mode="json"))
    console.print_json(json.dumps(shown, default=str))


def init(
    directory: Optional[Path] = typer.Argument(None, help="Where to write selfpub.toml (default: current folder)."),  # noqa: UP007
    force: bool = typer.Option(False, "--force", help="Overwrite an existing selfpub.toml."),
) -> None:
    """Write a commented selfpub.toml and create its state dir."""
    directory = (directory or Path(".")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "selfpub.toml"
    if target.exists() and not force:
        console.print(f"[red]{target} exists[/]; pass --force to overwrite it")
        raise typer.Exit(1)
    target.write_text(example_config_text(), encoding="utf-8")
    settings = load_settings(target, {}, check_files=False)
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    console.print(f"wrote {target}\nstate dir {settings.state_dir}")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(config_app, name="config")
    app.command("init")(init)
