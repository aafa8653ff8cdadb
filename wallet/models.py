"""Wallet tables, in a registry and Alembic history of their own (alembic_version_wallet).

Token amounts in raw units can exceed 64 bits (18 decimals), so they are
stored as decimal text; micro-credit amounts are BigInteger.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kernel.clock import utcnow

wallet_registry = registry()
metadata = wallet_registry.metadata


class WalletBase(SQLModel, registry=wallet_registry):
    pass


class ScanCursor(WalletBase, table=True):
    """The last block scanned for transfers to one address of one token on one chain."""

    __tablename__ = "wallet_scan_cursor"
    __table_args__ = (UniqueConstraint("chain_id", "token", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    token: str = Field(max_length=42)
    address: str = Field(max_length=42)
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    updated_at: datetime = Field(default_factory=utcnow)


class CountedLog(WalletBase, table=True):
    """A Transfer log booked in the ledger, with the block hash it was seen in."""

    __tablename__ = "wallet_counted_log"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", "block_hash"),
        Index("ix_counted_log_live_block", "chain_id", "status", "block_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    tx_hash: str = Field(max_length=66)
    log_index: int
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    sender: str = Field(max_length=42)
    units: str = Field(max_length=80)
    ucr: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(max_length=16)  # tip|funding
    idempotency_key: str = Field(max_length=200, unique=True)
    txn_id: int | None = None  # None when the amount was all dust
    status: str = Field(default="counted", max_length=16)  # counted|reversed
    reversal_txn_id: int | None = None
    counted_at: datetime = Field(default_factory=utcnow)


class Dust(WalletBase, table=True):
    """Token units below one micro-credit left over by a conversion (see wallet.units)."""

    __tablename__ = "wallet_dust"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=200, unique=True)  # the idempotency key it came from
    units: str = Field(max_length=80)
    decimals: int
    created_at: datetime = Field(default_factory=utcnow)


class Payment(WalletBase, table=True):
    """One settlement payment: written before signing, hash stored before sending (see wallet.settlement)."""

    __tablename__ = "wallet_payment"
    __table_args__ = (UniqueConstraint("chain_id", "sender", "nonce"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    provider: str = Field(max_length=64)
    sender: str = Field(max_length=42)
    payee: str = Field(max_length=42)
    amount_ucr: int = Field(sa_column=Column(BigInteger, nullable=False))  # liability paid off
    cost_ucr: int = Field(sa_column=Column(BigInteger, nullable=False))  # what the units are worth (>= amount)
    units: str = Field(max_length=80)
    nonce: int = Field(sa_column=Column(BigInteger, nullable=False))
    day: str = Field(max_length=10, index=True)  # UTC day, for the daily cap
    status: str = Field(default="planned", max_length=16, index=True)  # planned|signed|sent|mined|confirmed|failed
    tx_hash: str | None = Field(default=None, max_length=66)
    raw_tx: str | None = None  # the signed transaction (public once sent); re-broadcast as is
    max_gas_wei: str | None = Field(default=None, max_length=80)  # gas limit x max fee: the most its gas can cost
    gas_used: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    gas_wei: str | None = Field(default=None, max_length=80)
    block_number: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    block_hash: str | None = Field(default=None, max_length=66)  # the block its receipt was seen in (reorg check)
    ledger_txn_id: int | None = None
    bookings: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))  # times booked
    # "Not found" at a safe depth, counted once per new head: a payment is given up only after several.
    absent_looks: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    absent_head: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    sign_head: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # no block up to it holds ours
    error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SyncState(WalletBase, table=True):
    """When the chain last answered, and the last error: the staleness of chain data."""

    __tablename__ = "wallet_sync"

    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    last_success_at: datetime | None = None
    failing_since: datetime | None = None  # first failure since the last success
    last_error_at: datetime | None = None
    last_error: str = Field(default="", max_length=500)


class EngagementSeen(WalletBase, table=True):
    """The last counters seen for one post, so only the delta accrues."""

    __tablename__ = "wallet_engagement_seen"
    __table_args__ = (UniqueConstraint("platform", "post_id", "metric"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    post_id: str = Field(max_length=200)
    metric: str = Field(max_length=32)
    count: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Reconciliation(WalletBase, table=True):
    """One comparison of ledger assets:wallet with balanceOf on chain."""

    __tablename__ = "wallet_reconciliation"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(default_factory=utcnow, index=True)
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    ledger_ucr: int = Field(sa_column=Column(BigInteger, nullable=False))
    chain_units: str = Field(max_length=80)
    chain_ucr: int = Field(sa_column=Column(BigInteger, nullable=False))
    drift_ucr: int = Field(sa_column=Column(BigInteger, nullable=False))  # chain - ledger
    dust_units: str = Field(max_length=80)


class PaidRead(WalletBase, table=True):
    """One x402 payment for a read (wallet/reads.py): claimed before settling, then settled or failed.

    The ledger booking is not here: the settled transfer is counted by the tip scanner (a CountedLog of kind
    read:<kind>), so it is booked at wallet.confirmations and reversed on a reorg like a tip.
    """

    __tablename__ = "wallet_paid_read"
    __table_args__ = (Index("ix_paid_read_payer_status", "chain_id", "payer", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    payment_id: str = Field(max_length=200, unique=True)  # <network>:<token>:<payer>:<EIP-3009 nonce>
    chain_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    token: str = Field(max_length=42)
    payer: str = Field(max_length=42)
    nonce: str = Field(max_length=66)
    kind: str = Field(max_length=16)  # article|brief
    slug: str = Field(max_length=200)
    post_id: str | None = Field(default=None, max_length=200)
    task_id: str | None = Field(default=None, max_length=200)
    units: str = Field(max_length=80)  # the price in token units
    ucr: int = Field(sa_column=Column(BigInteger, nullable=False))  # the price in micro-credits
    status: str = Field(default="settling", max_length=16)  # settling|settled|failed
    tx_hash: str | None = Field(default=None, max_length=66, unique=True)
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    served_at: datetime | None = Field(default=None)  # the reader got the resource (once per payment)
