"""Ledger mode: credits in the ledger only; chain operations do nothing and say so; tables migrate."""

from __future__ import annotations

from sqlalchemy import inspect

from config.settings import WalletSettings
from ledger.funding import deposit
from ledger.journal import Journal
from wallet import LedgerWallet, latest_reconciliation, migrate


def test_the_ledger_wallet_reads_the_ledger_and_its_chain_calls_say_so(sqlite_journal: Journal) -> None:
    deposit(sqlite_journal, 3_000_000)
    wallet = LedgerWallet(sqlite_journal, WalletSettings())
    assert wallet.balance().ledger_ucr == 3_000_000 and "ledger mode" in wallet.balance().note
    assert "ledger mode" in wallet.scan().note
    assert "ledger mode" in wallet.settle().note
    assert wallet.reconcile() is None
    assert not wallet.is_too_stale() and wallet.pause_reason() is None
    assert wallet.status().ledger_ucr == 3_000_000


def test_wallet_tables_migrate_on_their_own_history_twice(engine) -> None:  # noqa: ANN001
    migrate(engine)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version_wallet", "wallet_counted_log", "wallet_payment", "wallet_scan_cursor",
            "wallet_reconciliation", "wallet_sync", "wallet_dust", "wallet_engagement_seen"} <= tables
    assert latest_reconciliation(engine) is None
