"""`selfpub cycle [--dry-run]`: run one cycle now and print what it did and what it cost.

A cycle by hand goes through the same door as the daemon's (daemon.cycle):
the gate with the wallet's pause reason, then the persona's cycle lock. It is
refused, with the reason and exit code 1, while the loop is paused (a low
balance, chain data too stale) or while another process runs the persona's
cycle. A dry run passes the gate but takes no lock (it writes nothing).
"""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.markup import escape

from kernel.money import format_credits
from daemon.context import app_context, err_console

console = Console()

REFUSED_EXIT = 1


def print_report(report) -> None:  # noqa: ANN001
    """Print a CycleReport: summary, explanations, errors."""
    console.print(f"[bold]{escape(report.summary())}[/]", highlight=False)
    if report.reason:
        console.print(f"reason: {escape(report.reason)}", highlight=False)
    for line in report.explanations:
        console.print(f"  - {escape(line)}", highlight=False)
    for line in report.errors:
        console.print(f"  [red]! {escape(line)}[/]", highlight=False)
    console.print(f"cost: {format_credits(report.cost)} credits")


class _NoModel:
    """The LLM of a dry run: any call is a bug."""

    async def complete(self, role, messages, **kw):  # noqa: ANN001, ANN003, ANN201
        raise RuntimeError("a dry run must not call a model")


def _refuse(outcome: str, reason: str) -> None:
    from daemon.cycle import PAUSED

    if outcome == PAUSED:
        err_console.print(f"[bold red]cycle refused: the loop is paused:[/] {escape(reason)}", highlight=False)
        err_console.print("  the daemon's gate would not run a cycle now either; it resumes by itself when the "
                          "reason clears (a deposit or tip, or chain data synced again)", highlight=False)
    else:
        err_console.print(f"[bold red]cycle refused:[/] {escape(reason)}", highlight=False)
        err_console.print("  one cycle of a persona runs at a time (the daemon's, or another `selfpub cycle`); "
                          "try again when it has finished", highlight=False)
    raise typer.Exit(REFUSED_EXIT)


def _wallet_pause_reason(app):  # noqa: ANN001, ANN202
    """The wallet's pause reason for the gate (web3 is imported only when a chain wallet is configured)."""
    from daemon.wiring import wallet_pause_reason

    if app.settings.wallet.mode == "ledger":
        return wallet_pause_reason(app.settings, app.journal)
    from wallet.errors import WalletError

    try:
        return wallet_pause_reason(app.settings, app.journal)
    except WalletError as exc:
        err_console.print(f"[red]cannot read the wallet's state for the gate: {escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(1) from None


def cycle(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: no model calls, no feed fetch, no publishing."),
) -> None:
    """Run one cycle now and print what it did and what it cost."""
    # Imported before the cycle lock is taken: a second of imports must not hold the daemon off.
    from agents.cycle import CycleContext, Gate
    from agents.orchestrator import cycle_worker
    from daemon.cycle import run_admitted
    from daemon.lock import CycleLock
    from daemon.wiring_agents import build_orchestrator

    app = app_context(ctx)
    settings = app.settings
    gate = Gate(app.budget, _wallet_pause_reason(app))
    cycle_ctx = CycleContext.start()

    async def run(c: CycleContext):  # noqa: ANN202
        # A dry run never calls a model: no client (and no embedded server) is built for it.
        runtime = build_orchestrator(app, channel=None if dry_run else "auto", llm=_NoModel() if dry_run else None)
        runtime.deps.worker = cycle_worker(settings.persona)
        try:
            return await runtime.orchestrator.run_cycle(c, dry_run=dry_run)
        finally:
            await runtime.aclose()

    if dry_run:
        pause = gate.check()
        if pause.paused:
            _refuse("paused", pause.reason)
        report = asyncio.run(run(cycle_ctx))
    else:
        lock = CycleLock(app.engine, settings.persona, settings.state_dir)
        done = asyncio.run(run_admitted(gate, lock, run, cycle_ctx))
        if not done.admission.admitted:
            _refuse(done.admission.outcome, done.admission.reason)
        report = done.result
    print_report(report)
    _exit_for(report)


# Exit codes of a cycle that ran: 0 ok; 3 failed (a dependency failed and nothing was stored);
# 4 degraded (a dependency failed, something was stored). 1 is a refusal (paused, locked), 2 a usage error.
FAILED_EXIT, DEGRADED_EXIT = 3, 4


def _exit_for(report) -> None:  # noqa: ANN001
    """Say why a failed or degraded cycle was not ok and exit non-zero (ok: return)."""
    outcome = getattr(report, "outcome", "ok")
    if outcome == "ok":
        return
    err_console.print(f"[bold red]cycle {escape(outcome)}:[/] {escape(report.why())}", highlight=False)
    raise typer.Exit(FAILED_EXIT if outcome == "failed" else DEGRADED_EXIT)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("cycle")(cycle)
