"""`selfpub cycle [--dry-run]`: run one cycle now and print what it did and what it cost."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.markup import escape

from config import format_credits
from daemon.context import app_context

console = Console()


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


def cycle(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: no model calls, no feed fetch, no publishing."),
) -> None:
    """Run one cycle now and print what it did and what it cost."""
    from daemon.wiring_agents import build_orchestrator

    app = app_context(ctx)

    async def run():  # noqa: ANN202
        # A dry run never calls a model: no client (and no embedded server) is built for it.
        runtime = build_orchestrator(app, channel=None if dry_run else "auto", llm=_NoModel() if dry_run else None)
        try:
            return await runtime.orchestrator.run_cycle(dry_run=dry_run)
        finally:
            await runtime.aclose()

    report = asyncio.run(run())
    print_report(report)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.command("cycle")(cycle)
