"""`selfpub run`: the long-running service (systemd Type=notify).

    run (the command) ──> serve(app, ...) ──> build_service(settings, ...) ──> Service.run()

`serve` takes the service's injection points (fast job intervals, the jobs factory) as
arguments, so tests start a real process on a fake cycle (tests/daemon/run_daemon.py) without
a hidden option on the command.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import typer

from config.loader import find_config_path
from config.settings import Settings
from daemon.context import AppContext, app_context
from daemon.startup import first_line, startup_error_types

if TYPE_CHECKING:
    from daemon.wiring import JobsFactory

log = logging.getLogger("selfpub.run")


def serve(app: AppContext, *, stop_grace: float, fast_seconds: float | None = None,
          jobs: JobsFactory | None = None) -> int:
    """Set up logging and tracing, build the service and run it until SIGTERM; the exit code."""
    from daemon.logs import apply_reload, setup_logging
    from daemon.tracing import setup_tracing, shutdown_tracing
    from daemon.wiring import build_service

    settings = app.settings
    app.check_database()  # a database that cannot be opened: one clear line (daemon/startup.py), no traceback
    redactor = setup_logging(settings)
    tracer = setup_tracing(settings)
    config_path = find_config_path(app.config_path, app.environ)

    def on_settings(new: Settings) -> None:
        apply_reload(new, redactor)

    try:
        service = build_service(
            settings, config_path=config_path, environ=app.environ, tracer=tracer, stop_grace_seconds=stop_grace,
            fast_seconds=fast_seconds, jobs=jobs, on_settings=on_settings,
        )
        return asyncio.run(service.run())
    except Exception as exc:
        if isinstance(exc, startup_error_types()):  # the config or environment: one line here, explained on stderr
            log.error("selfpub run cannot start", extra={"error": type(exc).__name__, "reason": first_line(exc)})
            raise
        log.critical("selfpub run failed", exc_info=True)
        return 1
    finally:
        shutdown_tracing()


def run(
    ctx: typer.Context,
    stop_grace: float = typer.Option(60.0, "--stop-grace", min=0,
                                     help="Seconds SIGTERM waits for the cycle in flight before abandoning it "
                                          "(keep it under the unit's TimeoutStopSec)."),
) -> None:
    """Run the scheduler, the pause/resume loop and the status server until SIGTERM."""
    raise typer.Exit(serve(app_context(ctx), stop_grace=stop_grace))


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("run")(run)
