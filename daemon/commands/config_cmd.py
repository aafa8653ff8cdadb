"""`selfpub init` and `selfpub config check|show`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from config import ConfigError, Problem, find_config_path, load_settings
from config.dirs import ServiceDirs
from config.loader import credential_report, where_state_dir
from daemon.context import app_context, print_config_error

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
        # Credentials are checked below, one line each: a name only the unit can resolve is not an error here.
        settings = load_settings(path, app.environ, probe_state_dir=True, need_secrets=False)
    except ConfigError as exc:
        print_config_error(exc)
        raise typer.Exit(1) from None
    rows = credential_report(settings, app.environ)
    problems = [problem for _key, _where, problem in rows if problem is not None]
    if problems:
        print_config_error(ConfigError(problems, str(path)))
    else:
        console.print(f"[green]ok[/]: {escape(str(path))}", highlight=False)
    for line in where_lines(path, app.environ, rows):
        console.print(escape(line), highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)


def where_lines(path: Path | None, environ: Mapping[str, str], rows: list[tuple[str, str, Problem | None]]) -> list[str]:
    """Where each folder and credential resolved, and by which rule (systemd's folders, the config, a default)."""
    dirs = ServiceDirs.from_environ(environ)
    lines = [f"  state_dir    {where_state_dir(path, environ)}"]
    lines.append(f"  cache        {dirs.cache} ($CACHE_DIRECTORY: matplotlib's cache)" if dirs.cache
                 else "  cache        none ($CACHE_DIRECTORY unset: matplotlib keeps its cache under $HOME)")
    lines.append("  logs         stdout (the journal under systemd)"
                 + (f"; $LOGS_DIRECTORY {dirs.logs} is not used" if dirs.logs else ""))
    lines.append(f"  credentials  {dirs.credentials} ($CREDENTIALS_DIRECTORY or --credentials)" if dirs.credentials
                 else "  credentials  no folder ($CREDENTIALS_DIRECTORY unset, no --credentials)")
    lines.extend(f"    {key}: {where}{': ' + problem.what if problem else ''}" for key, where, problem in rows)
    return lines


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the effective settings as JSON, every secret-bearing part of every value masked."""
    from daemon.redact import Redactor, secret_values  # SQLAlchemy's URL parser: `config check` does not pay for it

    settings = app_context(ctx).read_only().settings
    shown = Redactor(secret_values(settings)).redact_value(settings.model_dump(mode="json"))
    console.print_json(json.dumps(shown, default=str))


SYSTEM_HEADER = """\
# Written by `selfpub init --system` for the systemd unit (systemd/selfpub.service):
# state_dir is unset, so the state lives in $STATE_DIRECTORY (StateDirectory=selfpub: /var/lib/selfpub,
# the only folder the unit may write); credentials are named, e.g. api_key_file = "devto_api_key",
# and resolve in $CREDENTIALS_DIRECTORY (outside the unit: selfpub --credentials DIR ...).
"""
STATE_DIR_LINE = re.compile(r'^state_dir = .*$', re.M)


def system_config_text(text: str) -> str:
    """The example config made service-ready: state_dir left to $STATE_DIRECTORY, a header saying so."""
    text, found = STATE_DIR_LINE.subn('# state_dir = "/var/lib/selfpub"   (unset: $STATE_DIRECTORY under systemd)', text)
    if found != 1:
        raise RuntimeError("config/selfpub.example.toml has no `state_dir = ...` line to replace")
    return SYSTEM_HEADER + text


def _is_system_dir(directory: Path) -> bool:
    return directory == Path("/etc") or Path("/etc") in directory.parents


def init(
    directory: Optional[Path] = typer.Argument(None, help="Where to write selfpub.toml (default: current folder)."),  # noqa: UP007
    force: bool = typer.Option(False, "--force", help="Overwrite an existing selfpub.toml."),
    system: Optional[bool] = typer.Option(  # noqa: UP007
        None, "--system/--user",
        help="--system: a config for the systemd unit (state in $STATE_DIRECTORY, credentials by name); "
             "--user: state_dir next to the config, for running selfpub yourself. Default: --system for a folder "
             "under /etc (a service's config; ProtectSystem=strict makes /etc read-only), --user elsewhere."),
) -> None:
    """Write a commented selfpub.toml and create its state dir.

    With --system (the default under /etc) the state dir is the unit's $STATE_DIRECTORY, made by systemd.
    """
    directory = (directory or Path(".")).resolve()
    if system is None:
        system = _is_system_dir(directory)
        if system:
            console.print(f"{directory} is under /etc: writing a service config (--system); pass --user for "
                          "a config whose state_dir sits next to it", highlight=False)
    target = directory / "selfpub.toml"
    if target.exists() and not force:
        console.print(f"[red]{target} exists[/]; pass --force to overwrite it")
        raise typer.Exit(1)
    directory.mkdir(parents=True, exist_ok=True)
    text = example_config_text()
    target.write_text(system_config_text(text) if system else text, encoding="utf-8")
    if system:
        target.chmod(0o644)  # no secret in it; the service user reads it through the 0750 root:selfpub folder
        console.print(f"wrote {target}\nstate dir: $STATE_DIRECTORY under systemd (StateDirectory=selfpub: "
                      "/var/lib/selfpub), made by systemd at start\nnext: systemd/README.md, \"Minimum edits\"",
                      highlight=False, soft_wrap=True)
        return
    settings = load_settings(target, {}, check_files=False)
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    console.print(f"wrote {target}\nstate dir {settings.state_dir}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(config_app, name="config")
    app.command("init")(init)
