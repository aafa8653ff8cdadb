"""Ledger-only funding: a deposit credits the wallet against equity."""

from __future__ import annotations

import uuid
from datetime import datetime

from ledger.accounts import OPENING, WALLET
from ledger.journal import Entry, Journal, LedgerError, Posted


def deposit(
    journal: Journal,
    amount: int,
    memo: str = "deposit",
    idempotency_key: str | None = None,
    *,
    time: datetime | None = None,
) -> Posted:
    """Credit `amount` ucr to assets:wallet from equity:opening."""
    if type(amount) is not int or amount <= 0:
        raise LedgerError(f"a deposit must be a positive amount, got {amount!r}")
    key = idempotency_key or f"deposit:{uuid.uuid4()}"
    entries = [Entry(WALLET, amount), Entry(OPENING, -amount)]
    return journal.post("deposit", entries, idempotency_key=key, memo=memo, time=time)
