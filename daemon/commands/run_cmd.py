"""`selfpub run`: the long-running service (systemd Type=notify)."""

from __future__ import annotations

import asyncio
import logging

import typer

from config.loader import find_config_path
from kernel.money import AmountError, parse_credits
from daemon.context import app_context

log = logging.getLogger("selfpub.run")


def run(
    ctx: typer.Context,
    stop_grace: float = typer.Option(60.0, "--stop-grace", min=0,
                                     help="Seconds SIGTERM waits for the cycle in flight before abandoning it "
                                          "(keep it under the unit's TimeoutStopSec)."),
    # TEST-ONLY hooks, hidden from --help: a fake slow cycle instead of the orchestrator, fast job intervals.
    fake_cycle_seconds: float = typer.Option(None, "--fake-cycle-seconds", hidden=True),
    fake_cycle_cost: str = typer.Option("0", "--fake-cycle-cost", hidden=True),
    fast_seconds: float = typer.Option(None, "--fast-seconds", hidden=True),
) -> None:
    """Run the scheduler, the pause/resume loop and the status server until SIGTERM."""
    from daemon.logs import setup_logging
    from daemon.tracing import setup_tracing, shutdown_tracing
    from daemon.wiring import build_service

    app = app_context(ctx)
    settings = app.settings
    app.check_database()  # a database that cannot be opened: one clear line (daemon/startup.py), no traceback
    redactor = setup_logging(settings)
    try:
        cost = parse_credits(fake_cycle_cost)
    except AmountError as exc:
        raise typer.BadParameter(str(exc)) from None
    tracer = setup_tracing(settings)
    config_path = find_config_path(app.config_path, app.environ)

    def on_settings(new) -> None:  # noqa: ANN001
        from daemon.logs import apply_reload

        apply_reload(new, redactor)

    try:
        service = build_service(
            settings, config_path=config_path, environ=app.environ, tracer=tracer, stop_grace_seconds=stop_grace,
            fast_seconds=fast_seconds, fake_cycle_seconds=fake_cycle_seconds, fake_cycle_cost=cost,
            on_settings=on_settings,
        )
        code = asyncio.run(service.run())
    except Exception:
        log.critical("selfpub run failed", exc_info=True)
        code = 1
    finally:
        shutdown_tracing()
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("run")(run)
