"""`selfpub ledger ...`: deposit, reverse, pay-provider, report, export, plot."""

from __future__ import annotations

import sys
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from kernel.money import AmountError, format_credits, parse_credits
from daemon.context import AppContext, app_context

# Each command imports the ledger module it needs, so `selfpub ledger deposit` does not pay for the others.

console = Console()
err_console = Console(stderr=True)
ledger_app = typer.Typer(help="The money: balances, reports, exports.", no_args_is_help=True)
TABLE_POSTS = 20  # tasks in the report table's P&L: the most active


class By(str, Enum):
    day = "day"
    week = "week"
    month = "month"


class ReportFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class ExportFormat(str, Enum):
    hledger = "hledger"
    beancount = "beancount"


def _date(value: Optional[str], option: str) -> Optional[date]:  # noqa: UP007
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err_console.print(f"[red]{option} {value!r}: write a date as YYYY-MM-DD[/]")
        raise typer.Exit(2) from None


def _range(since: Optional[str], until: Optional[str]) -> tuple[Optional[date], Optional[date]]:  # noqa: UP007
    start, end = _date(since, "--since"), _date(until, "--until")
    if start and end and end < start:
        err_console.print(f"[red]--until {end} is before --since {start}[/]")
        raise typer.Exit(2)
    return start, end


def _positive_credits(amount: str) -> int:
    """The amount argument in ucr; a clear error and exit 1 unless it is more than 0 credits."""
    try:
        ucr = parse_credits(amount)
    except AmountError as exc:
        console.print(f"[red]amount {amount!r}: {exc}[/]")
        raise typer.Exit(1) from None
    if ucr <= 0:
        console.print(f"[red]amount {amount!r}: must be more than 0[/]")
        raise typer.Exit(1)
    return ucr


@ledger_app.command("deposit")
def deposit(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="Credits, up to 6 decimals (e.g. 1.25)."),
    memo: str = typer.Option("deposit", "--memo", help="Why the credits arrived."),
) -> None:
    """Fund the agent in ledger-only mode."""
    ucr = _positive_credits(amount)
    from ledger.funding import deposit as ledger_deposit

    app = app_context(ctx)
    mode = app.settings.wallet.mode
    if mode != "ledger":
        # On a chain wallet, assets:wallet mirrors the token balance: a deposit by hand would make the ledger
        # disagree with the chain (and reconciliation report it as drift). Funds arrive on chain instead.
        console.print(f"[red]ledger deposit is for wallet.mode = \"ledger\"; this wallet is {mode!r}: send credit "
                      "tokens to the agent's address (`selfpub wallet balance` shows it) and they are booked by "
                      "the next scan (`selfpub wallet scan`)[/]")
        raise typer.Exit(1)
    posted = ledger_deposit(app.journal, ucr, memo=memo)
    console.print(f"deposited {format_credits(ucr)} credits (transaction {posted.txn_id})")


@ledger_app.command("report")
def report(
    ctx: typer.Context,
    since: Optional[str] = typer.Option(None, "--since", help="First day (YYYY-MM-DD, UTC), included."),  # noqa: UP007
    until: Optional[str] = typer.Option(None, "--until", help="Last day (YYYY-MM-DD, UTC), included."),  # noqa: UP007
    by: By = typer.Option(By.day, "--by", "--period", help="Period of the series (and of each CSV row)."),
    fmt: ReportFormat = typer.Option(ReportFormat.table, "--format", help="table (rich), json (stable keys) or csv."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV, one row per period: same as --format csv."),
) -> None:
    """Balance, available, income, spend by agent and model, P&L per post, funding, burn, runway, pause."""
    from ledger.reports import build_report, render_table, to_csv

    start, end = _range(since, until)
    # Needs no credential, and reads only on raw cursors: on a SQLite file at head, no SQLAlchemy import.
    app = app_context(ctx).read_only(plain=True)
    x402 = app.settings.x402
    as_json = fmt is ReportFormat.json and not as_csv
    # JSON lists every task; the table shows the most active (grouped in the database) and CSV none of them.
    result = build_report(app.journal, app.budget, since=start, until=end, by=by.value, posts_of=_posts_of(app),
                          sustain=app.settings.sustain, read_price=x402.price_article if x402.enabled else None,
                          top=None if as_json else TABLE_POSTS)
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
    elif fmt is ReportFormat.csv or as_csv:
        sys.stdout.write(to_csv(result))
    else:
        render_table(result, console, posts=TABLE_POSTS)


def _posts_of(app: AppContext) -> dict[str, list[str]]:
    """task id -> its posts ("platform:id") from the publishers' outbox: the report's post column."""
    from daemon.posts import posts_of
    from publishers.delivered import Delivered  # the outbox read on the raw cursor: no SQLAlchemy needed

    return posts_of(Delivered(app.engine))


def _ledger_mode(app: AppContext, command: str) -> None:
    """Refuse a hand booking of wallet money on a chain wallet, where assets:wallet mirrors the chain."""
    mode = app.settings.wallet.mode
    if mode != "ledger":
        console.print(f"[red]ledger {command} is for wallet.mode = \"ledger\"; this wallet is {mode!r}: its "
                      "payments are made and booked on chain by settlement (`selfpub wallet settle`)[/]")
        raise typer.Exit(1)


@ledger_app.command("reverse")
def reverse(
    ctx: typer.Context,
    txn_id: int = typer.Argument(..., help="The transaction to undo (the id `ledger export` shows)."),
    reason: str = typer.Option(..., "--reason", help="Why: kept with the correcting transaction."),
) -> None:
    """Undo a mistaken transaction with a correcting one (nothing is edited or deleted)."""
    from ledger.manual import ManualRefused, reverse_by_hand

    app = app_context(ctx)
    try:
        posted = reverse_by_hand(app.journal, txn_id, reason)
    except ManualRefused as exc:
        console.print(f"[red]cannot reverse: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    console.print(f"reversed transaction {txn_id} by transaction {posted.txn_id}")


@ledger_app.command("pay-provider")
def pay_provider(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The provider (the NAME its debt is booked under)."),
    amount: str = typer.Argument(..., help="Credits paid, up to 6 decimals."),
    ref: Optional[str] = typer.Option(None, "--ref", help="Your payment's reference: the same ref books once."),  # noqa: UP007
) -> None:
    """Record paying a compute provider in ledger mode (what is owed to it and the wallet both go down)."""
    ucr = _positive_credits(amount)
    from ledger.manual import ManualRefused
    from ledger.manual import pay_provider as book_payment

    app = app_context(ctx)
    _ledger_mode(app, "pay-provider")
    try:
        posted = book_payment(app.journal, name, ucr, ref=ref)
    except ManualRefused as exc:
        console.print(f"[red]cannot pay {escape(name)}: {escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    if posted.created:
        console.print(f"paid {escape(name)} {format_credits(ucr)} credits (transaction {posted.txn_id})")
    else:
        console.print(f"already booked: ref {escape(ref or '')} is transaction {posted.txn_id}; nothing new")


@ledger_app.command("export")
def export(
    ctx: typer.Context,
    fmt: ExportFormat = typer.Option(..., "--format", help="hledger journal or beancount file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write here instead of stdout."),  # noqa: UP007
) -> None:
    """The whole journal for `hledger -f FILE bal` or `bean-check FILE`."""
    from ledger.export import export as ledger_export

    app = app_context(ctx).read_only()  # needs no publisher, LLM or wallet credential
    if out is None:
        ledger_export(app.journal, fmt.value, sys.stdout)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        n = ledger_export(app.journal, fmt.value, fh)
    tmp.replace(out)  # a reader never sees half a file
    err_console.print(f"wrote {n} transactions to {out}")


@ledger_app.command("plot")
def plot(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="FILE.png or FILE.svg."),
    since: Optional[str] = typer.Option(None, "--since", help="First day (YYYY-MM-DD, UTC)."),  # noqa: UP007
    until: Optional[str] = typer.Option(None, "--until", help="Last day (YYYY-MM-DD, UTC), included."),  # noqa: UP007
    by: By = typer.Option(By.day, "--by", help="Period of each point."),
) -> None:
    """Chart balance, spend and income over time."""
    if out.suffix.lower() not in (".png", ".svg"):
        err_console.print(f"[red]--out {out}: plot to a .png or .svg file[/]")
        raise typer.Exit(2)
    from ledger.plot import render as render_plot  # matplotlib is imported by render itself

    start, end = _range(since, until)
    app = app_context(ctx).read_only()  # needs no publisher, LLM or wallet credential
    render_plot(app.journal, out, since=start, until=end, by=by.value, now=datetime.now().astimezone(),
                budget=app.settings.budget)
    err_console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(ledger_app, name="ledger")
