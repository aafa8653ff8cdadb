"""Ledger tables. Amounts are integer micro-credits (BigInteger), never floats.

Postings and transactions are append-only (migration 0002 adds triggers that
refuse UPDATE and DELETE). `ledger_balance`, `ledger_rollup`,
`ledger_task_rollup` and `ledger_spend_counter` are running totals updated
in the same database transaction as the postings they summarise, so budget
checks stay O(1) and reports stay fast at any ledger size;
`Journal.verify()` recomputes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kernel.clock import utcnow
from ledger.accounts import COMMODITY  # noqa: F401 - its home is the chart of accounts; re-exported here

# A registry of our own so ledger tables migrate on their own history.
ledger_registry = registry()
metadata = ledger_registry.metadata


class LedgerBase(SQLModel, registry=ledger_registry):
    pass


class Account(LedgerBase, table=True):
    __tablename__ = "ledger_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    kind: str = Field(max_length=16)  # assets|liabilities|income|expenses|equity
    created_at: datetime = Field(default_factory=utcnow)


def _partial(name: str, column: str, where: str, *, unique: bool = False) -> Index:
    """An index of only the rows matching `where` (SQLite and PostgreSQL): fewer pages to write per insert."""
    return Index(name, column, unique=unique, sqlite_where=text(where), postgresql_where=text(where))


class Transaction(LedgerBase, table=True):
    __tablename__ = "ledger_txn"
    __table_args__ = (
        # A transaction is reversed at most once (a second reversal would double the correction).
        _partial("ux_ledger_txn_reverses_id", "reverses_id", "reverses_id IS NOT NULL", unique=True),
        _partial("ix_ledger_txn_task_id", "task_id", "task_id IS NOT NULL"),
        _partial("ix_ledger_txn_post_id", "post_id", "post_id IS NOT NULL"),
    )

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(default_factory=utcnow, index=True)
    memo: str = Field(default="", max_length=500)
    kind: str = Field(max_length=32)  # deposit|compute|tip|engagement|settlement|reversal|...
    idempotency_key: str = Field(unique=True, max_length=200)
    task_id: str | None = Field(default=None, max_length=64)
    post_id: str | None = Field(default=None, max_length=200)
    tx_hash: str | None = Field(default=None, max_length=80)
    reverses_id: int | None = Field(default=None, foreign_key="ledger_txn.id")
    # What a compute transaction bought: the model and the tokens the provider reported.
    model: str | None = Field(default=None, max_length=200)
    input_tokens: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    output_tokens: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Posting(LedgerBase, table=True):
    __tablename__ = "ledger_posting"
    __table_args__ = (Index("ix_posting_account_txn", "account", "txn_id"),)

    id: int | None = Field(default=None, primary_key=True)
    txn_id: int = Field(foreign_key="ledger_txn.id", index=True)
    account: str = Field(max_length=200)
    commodity: str = Field(default=COMMODITY, max_length=16)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))


class AccountBalance(LedgerBase, table=True):
    __tablename__ = "ledger_balance"
    __table_args__ = (UniqueConstraint("account", "commodity"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=200)
    commodity: str = Field(default=COMMODITY, max_length=16)
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class Rollup(LedgerBase, table=True):
    """Postings summed per UTC day, account, commodity and model (reports read this, not postings).

    `model` is the transaction's model on income and expense postings, '' on the others.
    """

    __tablename__ = "ledger_rollup"
    __table_args__ = (UniqueConstraint("day", "account", "commodity", "model", name="ux_ledger_rollup_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10)  # YYYY-MM-DD, UTC
    account: str = Field(max_length=200)
    commodity: str = Field(default=COMMODITY, max_length=16)
    model: str = Field(default="", max_length=200)
    amount: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    postings: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class TaskRollup(LedgerBase, table=True):
    """Cost (expense postings) and earnings (income postings, positive) per UTC day, task and post."""

    __tablename__ = "ledger_task_rollup"
    __table_args__ = (UniqueConstraint("day", "task_id", "post_id", "commodity", name="ux_ledger_task_rollup_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10)
    task_id: str = Field(max_length=64)
    post_id: str = Field(default="", max_length=200)
    commodity: str = Field(default=COMMODITY, max_length=16)
    cost: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    earnings: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    postings: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class Reservation(LedgerBase, table=True):
    __tablename__ = "ledger_reservation"
    # Only open holds are ever looked up (sum, earliest expiry): index just those.
    __table_args__ = (_partial("ix_reservation_open_expires", "expires_at", "status = 'open'"),)

    id: int | None = Field(default=None, primary_key=True)
    agent: str = Field(max_length=64)
    model: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    actual: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # open -> committed (usage booked) | released (never sent, or refused unbilled) | expired (TTL passed,
    # never sent: freed) | presumed (sent, no usage known: booked at `amount`, the held worst case;
    # a later commit books the difference and makes it committed).
    status: str = Field(default="open", max_length=16)
    cycle_id: str | None = Field(default=None, max_length=64)
    task_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    closed_at: datetime | None = None
    sent_at: datetime | None = None  # written before the request leaves: an expired hold with it was spent


class SpendCounter(LedgerBase, table=True):
    """Committed spend per period key ("day:2026-11-21", "cycle:<id>")."""

    __tablename__ = "ledger_spend_counter"

    key: str = Field(primary_key=True, max_length=100)
    spent: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    reserved: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class BudgetState(LedgerBase, table=True):
    """One row per persona: the pause flag. The row named "*" is the lock every budget write takes."""

    __tablename__ = "ledger_budget_state"

    persona: str = Field(primary_key=True, max_length=64)
    paused: bool = False
    reason: str = Field(default="", max_length=500)
    cause: str = Field(default="", max_length=16)  # balance|forced|"" (why paused)
    changed_at: datetime = Field(default_factory=utcnow)
