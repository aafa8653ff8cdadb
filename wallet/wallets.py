"""The two wallets the daemon may hold: ledger-only and on-chain (evm / embedded).

Both answer the same calls: status(), balance(), scan(), settle(dry_run),
reconcile(), is_too_stale(), pause_reason(). The ledger wallet's chain
operations do nothing and say so in their result's `note`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from opentelemetry import trace
from sqlalchemy import Engine
from web3 import Web3

from kernel.clock import utcnow
from kernel.db import migrate as migrate_room
from config.settings import WalletSettings
from ledger.accounts import WALLET
from ledger.journal import Journal
from wallet import reconcile as recon
from wallet.chain import check_chain_id, rpc, token_contract
from wallet.errors import NotOnChain, RpcUnavailable
from wallet.keystore import Signer
from wallet.scanner import LogRange, ScanResult, TipScanner
from wallet.settlement import SettleReport, Settler
from wallet.sync import Freshness, SyncClock
from wallet.units import units_to_ucr

if TYPE_CHECKING:
    from wallet.embedded import EmbeddedChain

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.wallet")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_wallet"
LEDGER_NOTE = "ledger mode: credits live in the ledger only; nothing on chain"


def migrate(engine: Engine) -> None:
    """Create or upgrade the wallet tables (alembic_version_wallet)."""
    migrate_room(engine, MIGRATIONS, VERSION_TABLE)


@dataclass(frozen=True)
class WalletStatus:
    """What the status page shows about the wallet."""

    mode: str
    ledger_ucr: int  # assets:wallet
    chain_id: int | None = None
    address: str | None = None
    token: str | None = None
    last_sync_at: datetime | None = None
    stale: bool = False
    too_stale: bool = False
    last_error: str = ""
    scanned_to_block: int | None = None
    last_drift_ucr: int | None = None


@dataclass(frozen=True)
class Balance:
    """The wallet balance as the ledger knows it and, on chain modes, as the chain says."""

    ledger_ucr: int
    chain_ucr: int | None = None
    chain_units: int | None = None
    note: str = ""


class Wallet(Protocol):
    """What the daemon and the CLI call."""

    mode: str

    def status(self) -> WalletStatus: ...
    def balance(self) -> Balance: ...
    def scan(self, max_blocks: int | None = None) -> ScanResult: ...
    def settle(self, *, dry_run: bool = False) -> SettleReport: ...
    def reconcile(self) -> recon.ReconcileResult | None: ...
    def is_too_stale(self) -> bool: ...
    def pause_reason(self) -> str | None: ...


def _node(w3: Web3) -> str | None:
    """host:port of the JSON-RPC node (never its path or credentials, which may hold an API key)."""
    uri = getattr(w3.provider, "endpoint_uri", None)
    if not uri:
        return None
    parts = urlsplit(str(uri))
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


class LedgerWallet:
    """Credits in the ledger only (funded with `selfpub ledger deposit`)."""

    mode = "ledger"

    def __init__(self, journal: Journal, settings: WalletSettings):
        self.journal = journal
        self.settings = settings

    def status(self) -> WalletStatus:
        """Ledger balance; never stale (no chain to fall behind)."""
        return WalletStatus(self.mode, self.journal.balance(WALLET))

    def balance(self) -> Balance:
        """assets:wallet from the ledger."""
        return Balance(self.journal.balance(WALLET), note=LEDGER_NOTE)

    def scan(self, max_blocks: int | None = None) -> ScanResult:
        """Nothing to scan: says so."""
        return ScanResult(0, -1, 0, note=LEDGER_NOTE)

    def settle(self, *, dry_run: bool = False) -> SettleReport:
        """Nothing to pay on chain: says so (liabilities stay in the ledger)."""
        return SettleReport(dry_run=dry_run, note=LEDGER_NOTE)

    def reconcile(self) -> recon.ReconcileResult | None:
        """Nothing to reconcile against: None."""
        return None

    def is_too_stale(self) -> bool:
        """Never: the ledger is the truth."""
        return False

    def pause_reason(self) -> str | None:
        """Never a reason to pause."""
        return None

    def require_chain(self, what: str) -> None:
        """Raise NotOnChain for an operation that needs a chain."""
        raise NotOnChain(f"{what} needs wallet.mode = 'evm' or 'embedded' ({LEDGER_NOTE})")


class ChainWallet:
    """Credits as an ERC-20 token on a chain reached through the given Web3."""

    def __init__(
        self,
        w3: Web3,
        journal: Journal,
        settings: WalletSettings,
        *,
        token: str,
        address: str,
        signer: Signer | None = None,
        mode: str = "evm",
        start_block: int = 0,
        clock: Callable[[], datetime] = utcnow,
        embedded: EmbeddedChain | None = None,
        receipt_timeout: float | None = None,
    ):
        if signer is not None and Web3.to_checksum_address(address) != signer.address:
            raise ValueError(f"wallet.address {address} is not the keystore's address {signer.address}")
        self.w3 = w3
        self.journal = journal
        self.engine = journal.engine
        self.settings = settings
        self.token = Web3.to_checksum_address(token)
        self.address = Web3.to_checksum_address(address)
        self.signer = signer
        self.mode = mode
        self.start_block = start_block
        self.clock = clock
        self.embedded = embedded
        self.receipt_timeout = receipt_timeout
        self._chain_id: int | None = None
        self._decimals: int | None = None
        self._migrated = False
        self._log_range = LogRange(settings.scan_block_range)  # shrinks when the node refuses a log range

    # -- connection ----------------------------------------------------------

    def _sync(self) -> SyncClock:
        return SyncClock(
            self.engine, self.settings.chain_id or self._chain_id or 0,
            stale_after_seconds=self.settings.stale_after_seconds,
            max_staleness_seconds=self.settings.max_staleness_seconds, clock=self.clock,
        )

    def _tables(self) -> None:
        if not self._migrated:
            migrate(self.engine)
            self._migrated = True

    def connect(self) -> None:
        """Check the chain id (ChainMismatch) and read the token's decimals; idempotent."""
        self._tables()
        if self._chain_id is not None:
            return
        try:
            chain_id = check_chain_id(self.w3, self.settings.chain_id)
            with rpc("decimals"):
                decimals = int(token_contract(self.w3, self.token).functions.decimals().call())
        except RpcUnavailable as exc:
            self._sync().failed(f"{exc.operation}: {exc.cause}")
            log.warning("wallet chain unavailable",
                        extra={"operation": exc.operation, "cause": exc.cause, "node": _node(self.w3)})
            raise
        self._chain_id, self._decimals = chain_id, decimals

    @property
    def chain_id(self) -> int:
        """The node's chain id (after connect())."""
        self.connect()
        return self._chain_id  # type: ignore[return-value]

    @property
    def decimals(self) -> int:
        """The token's decimals, read from the contract."""
        self.connect()
        return self._decimals  # type: ignore[return-value]

    def _guarded(self, fn: Callable, *, stale_because: Callable[[Any], str] = lambda _: ""):  # noqa: ANN202
        """Run a chain operation; record success or failure for staleness.

        An answer whose data is not fresh (`stale_because` gives a reason, e.g. a node behind our cursor) is
        recorded as a failure: a node stuck behind must grow stale and pause the loop, not look healthy.
        """
        self.connect()
        try:
            result = fn()
        except RpcUnavailable as exc:
            self._sync().failed(f"{exc.operation}: {exc.cause}")
            log.warning("wallet chain unavailable",
                        extra={"operation": exc.operation, "cause": exc.cause, "node": _node(self.w3)})
            raise
        reason = stale_because(result)
        if reason:
            self._sync().failed(reason)
        else:
            self._sync().ok()
        return result

    def scanner(self) -> TipScanner:
        """The tip scanner of this wallet."""
        return TipScanner(
            self.w3, self.journal, chain_id=self.chain_id, token=self.token, address=self.address,
            decimals=self.decimals, confirmations=self.settings.confirmations,
            block_range=self.settings.scan_block_range, start_block=self.start_block, log_range=self._log_range,
            clock=self.clock,
        )

    def settler(self) -> Settler:
        """The settler of this wallet."""
        return Settler(
            self.w3, self.journal, self.signer, self.settings, chain_id=self.chain_id, token=self.token,
            decimals=self.decimals, clock=self.clock, receipt_timeout=self.receipt_timeout,
        )

    # -- the calls -----------------------------------------------------------

    def freshness(self) -> Freshness:
        """Staleness of chain data (database only)."""
        self._tables()
        return self._sync().freshness()

    def status(self) -> WalletStatus:
        """Ledger balance, last sync, staleness and last drift; needs no RPC."""
        self._tables()
        fresh = self.freshness()
        last = recon.latest_reconciliation(self.engine)
        cursor = None
        if self._chain_id is not None:
            cur = self.scanner().cursor()
            cursor = cur[0] if cur else None
        return WalletStatus(
            self.mode, self.journal.balance(WALLET), self._chain_id or self.settings.chain_id, self.address,
            self.token, fresh.last_success_at, fresh.stale, fresh.too_stale, fresh.last_error, cursor,
            last.drift_ucr if last else None,
        )

    def balance(self) -> Balance:
        """Ledger assets:wallet and balanceOf on chain."""
        def read() -> Balance:
            with rpc("balance_of"):
                units = int(token_contract(self.w3, self.token).functions.balanceOf(self.address).call())
            return Balance(self.journal.balance(WALLET), units_to_ucr(units, self.decimals).ucr, units)

        return self._guarded(read)

    def scan(self, max_blocks: int | None = None) -> ScanResult:
        """Book confirmed tips since the cursor (reorg-aware)."""
        with tracer.start_as_current_span("wallet.scan", attributes={"wallet.mode": self.mode}) as span:
            result = self._guarded(lambda: self.scanner().scan(max_blocks),
                                   stale_because=lambda r: f"scan: {r.note}" if r.behind else "")
            span.set_attribute("wallet.tips_booked", result.counted)
            return result

    def settle(self, *, dry_run: bool = False) -> SettleReport:
        """Pay provider liabilities over the threshold (recovering unfinished payments first); one run at a time per database."""
        with tracer.start_as_current_span("wallet.settle", attributes={"wallet.mode": self.mode, "dry_run": dry_run}) as span:
            report = self._guarded(lambda: self.settler().settle(dry_run=dry_run))
            span.set_attribute("wallet.payments", len(report.paid))
            span.set_attribute("wallet.settle_busy", report.busy)
            return report

    def reconcile(self) -> recon.ReconcileResult:
        """Compare assets:wallet with balanceOf, store the result, return it."""
        def compare() -> recon.ReconcileResult:
            with rpc("reconcile"):
                block = int(self.w3.eth.block_number)
                units = int(token_contract(self.w3, self.token).functions.balanceOf(self.address).call(block_identifier=block))
            ledger_ucr = self.journal.balance(WALLET)
            chain_ucr = units_to_ucr(units, self.decimals).ucr
            result = recon.ReconcileResult(
                self.clock(), self.chain_id, block, ledger_ucr, units, chain_ucr, chain_ucr - ledger_ucr,
                recon.dust_units(self.engine),
            )
            recon.store(self.engine, result)
            return result

        return self._guarded(compare)

    def is_too_stale(self) -> bool:
        """True when chain data is older than wallet.max_staleness_seconds: the daemon should pause."""
        return self.freshness().too_stale

    def pause_reason(self) -> str | None:
        """A reason for Budget.evaluate(extra_reason=...) when chain data is too stale, else None."""
        fresh = self.freshness()
        if not fresh.too_stale:
            return None
        since = fresh.last_success_at or fresh.failing_since
        return (
            f"chain data too stale: last successful sync {since:%Y-%m-%d %H:%M:%S}Z is older than "
            f"wallet.max_staleness_seconds={self.settings.max_staleness_seconds}"
        )
