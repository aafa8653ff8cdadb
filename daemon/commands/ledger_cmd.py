"""`selfpub ledger ...`: deposit, report, export, plot."""

from __future__ import annotations

import typer
from rich.console import Console

from config import AmountError, format_credits, parse_credits
from daemon.context import app_context
from ledger.funding import deposit as ledger_deposit

console = Console()
ledger_app = typer.Typer(help="The money: balances, reports, exports.", no_args_is_help=True)


@ledger_app.command("deposit")
def deposit(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="Credits, up to 6 decimals (e.g. 1.25)."),
    memo: str = typer.Option("deposit", "--memo", help="Why the credits arrived."),
) -> None:
    """Fund the agent in ledger-only mode."""
    try:
        ucr = parse_credits(amount)
    except AmountError as exc:
        console.print(f"[red]amount {amount!r}: {exc}[/]")
        raise typer.Exit(1) from None
    if ucr <= 0:
        console.print(f"[red]amount {amount!r}: must be more than 0[/]")
        raise typer.Exit(1)
    app = app_context(ctx)
    posted = ledger_deposit(app.journal, ucr, memo=memo)
    console.print(f"deposited {format_credits(ucr)} credits (transaction {posted.txn_id})")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(ledger_app, name="ledger")
