"""`selfpub wallet ...`: balance, scan, settle, reconcile, new."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from kernel.money import format_credits
from daemon.context import app_context
from ledger.accounts import WALLET

# web3 (behind every wallet module) costs about a second to import: each command imports it when it runs.

console = Console()
err = Console(stderr=True)
wallet_app = typer.Typer(help="On-chain credits: balance, tips, settlement, reconciliation.", no_args_is_help=True)


def _wallet(ctx: typer.Context):  # noqa: ANN202
    from daemon.wiring_wallet import build_wallet
    from wallet.errors import WalletError

    app = app_context(ctx)
    try:
        return build_wallet(app.settings, app.journal)
    except WalletError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None


def _run(fn):  # noqa: ANN001, ANN202
    from wallet.errors import WalletError

    try:
        return fn()
    except WalletError as exc:
        err.print(f"[red]{type(exc).__name__}: {exc}[/]")
        raise typer.Exit(2) from None


@wallet_app.command("balance")
def balance(ctx: typer.Context) -> None:
    """The wallet balance in the ledger and on chain, and how fresh chain data is."""
    w = _wallet(ctx)
    b = _run(w.balance)
    console.print(f"ledger {WALLET}  {format_credits(b.ledger_ucr)} credits")
    if b.chain_ucr is not None:
        console.print(f"on chain balanceOf    {format_credits(b.chain_ucr)} credits ({b.chain_units} token units)")
    if b.note:
        console.print(b.note)
    s = w.status()
    if s.mode != "ledger":
        console.print(f"last sync {s.last_sync_at or 'never'}{'  STALE' if s.stale else ''}")


@wallet_app.command("scan")
def scan(ctx: typer.Context, max_blocks: Optional[int] = typer.Option(None, help="Scan at most this many blocks.")) -> None:  # noqa: UP007
    """Book confirmed tips (Transfer logs to the agent) since the last scanned block."""
    r = _run(lambda: _wallet(ctx).scan(max_blocks))
    if r.note:
        console.print(r.note)
        return
    console.print(
        f"scanned blocks {r.from_block}..{r.to_block} (head {r.head}): {r.logs} transfer(s), "
        f"{r.counted} new, {format_credits(r.counted_ucr)} credits; {r.reversed} reversed by reorg"
    )


@wallet_app.command("settle")
def settle(ctx: typer.Context, dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent; send nothing.")) -> None:
    """Pay provider liabilities over wallet.settle_threshold on chain (within allowlist and caps)."""
    r = _run(lambda: _wallet(ctx).settle(dry_run=dry_run))
    if r.note:
        console.print(r.note)
    for p in r.recovered:
        console.print(f"recovered {p.key}: {p.status} {p.tx_hash or ''}")
    for p in r.planned:
        console.print(
            f"would pay {p.provider} {p.payee}: {format_credits(p.amount_ucr)} credits "
            f"({p.units} token units) of {format_credits(p.owed_ucr)} owed"
        )
    for p in r.paid:
        gas = f", gas {p.gas_wei} wei" if p.gas_wei is not None else ""
        console.print(f"paid {p.provider} {p.payee}: {format_credits(p.amount_ucr)} credits, {p.status} {p.tx_hash}{gas}")
    for x in r.refused:
        console.print(f"[yellow]refused ({x.reason}): {x}[/]")
    if not (r.note or r.recovered or r.planned or r.paid or r.refused):
        console.print("nothing to settle")


@wallet_app.command("reconcile")
def reconcile(ctx: typer.Context) -> None:
    """Compare ledger assets:wallet with balanceOf on chain; store and print the drift."""
    w = _wallet(ctx)
    r = _run(w.reconcile)
    if r is None:
        console.print("ledger mode: nothing on chain to reconcile")
        return
    console.print(
        f"block {r.block_number}: ledger {format_credits(r.ledger_ucr)}, chain {format_credits(r.chain_ucr)}, "
        f"drift {format_credits(r.drift_ucr)} credits; dust {r.dust_units} token units"
    )
    if not r.balanced:
        raise typer.Exit(3)


@wallet_app.command("new")
def new(
    keystore: Path = typer.Option(..., "--keystore", help="Where to write the encrypted keystore (mode 0600)."),
    password_file: Optional[Path] = typer.Option(None, "--password-file", help="File holding the password (else a prompt)."),  # noqa: UP007
) -> None:
    """Create a new key in an encrypted keystore; prints only the address."""
    from wallet.keystore import create_keystore

    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
    else:
        password = getpass.getpass("keystore password: ")
        if getpass.getpass("again: ") != password:
            err.print("[red]the passwords differ[/]")
            raise typer.Exit(1)
    address = _run(lambda: create_keystore(keystore, password))
    console.print(address)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(wallet_app, name="wallet")
