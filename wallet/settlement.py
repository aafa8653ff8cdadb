"""Pay providers on chain for the compute they sold: never twice, never past a cap.

A provider is paid when liabilities:provider:<name> passes
wallet.settle_threshold, to its address in wallet.providers, which must be
in wallet.allowlist; one payment is at most wallet.settle_max_per_tx and a
UTC day's payments at most wallet.settle_daily_cap.

Order of writes (a crash between any two steps is safe):
  1. sign with the next nonce (nothing written: a crash here leaves the nonce free)
  2. payment row with tx hash + signed bytes (status signed, idempotency key
     settle:<chain>:<sender>:<nonce>)                          <- before sending
  3. send the signed bytes (status sent)
  4. receipt -> ledger transaction with the same key (status confirmed | failed)

On every settle, `recover()` runs first: each unfinished payment is looked up
by its stored hash; a mined one is recorded; one the node never saw is
re-broadcast byte for byte (same nonce, same hash: it cannot pay twice); one
whose nonce was used by another transaction is marked failed. While a
payment is unresolved no new payment is made.

Ledger of a confirmed payment (kind "settlement"):
  liabilities:provider:<name>  +amount       CR
  assets:wallet                -cost         CR   (cost = amount rounded up to whole token units)
  expenses:dust                +cost-amount  CR   (only when the token has < 6 decimals)
  expenses:gas                 +gas          WEI  (native coin, in wei: a commodity of its own)
  assets:native                -gas          WEI
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from web3 import Web3
from web3.exceptions import TimeExhausted, TransactionNotFound

from config.settings import WalletSettings
from ledger.journal import WALLET, Entry, Journal, provider_account
from wallet.chain import hexstr, rpc, token_contract
from wallet.errors import PaymentRefused
from wallet.keystore import Signer
from wallet.models import Payment, utcnow
from wallet.units import ucr_to_units

log = logging.getLogger(__name__)

PAYMENT = Payment.__table__
GAS_COMMODITY = "WEI"
GAS_EXPENSE = "expenses:gas"
NATIVE = "assets:native"
DUST_EXPENSE = "expenses:dust"
OPEN_STATUSES = ("planned", "signed", "sent")


@dataclass(frozen=True)
class PlannedPayment:
    """A payment settle() would make (what --dry-run prints)."""

    provider: str
    payee: str
    owed_ucr: int
    amount_ucr: int
    cost_ucr: int
    units: int


@dataclass(frozen=True)
class PaymentOutcome:
    """A payment's state after settle/recover."""

    key: str
    provider: str
    payee: str
    amount_ucr: int
    status: str  # signed|sent|confirmed|failed
    tx_hash: str | None
    gas_wei: int | None = None
    error: str = ""


@dataclass(frozen=True)
class SettleReport:
    """What one settle did: recovered payments, new payments, plans (dry run), refusals."""

    recovered: tuple[PaymentOutcome, ...] = ()
    paid: tuple[PaymentOutcome, ...] = ()
    planned: tuple[PlannedPayment, ...] = ()
    refused: tuple[PaymentRefused, ...] = ()
    dry_run: bool = False
    note: str = ""


class Settler:
    """Settles provider liabilities with ERC-20 transfers from the agent's address."""

    def __init__(
        self,
        w3: Web3,
        journal: Journal,
        signer: Signer | None,
        settings: WalletSettings,
        *,
        chain_id: int,
        token: str,
        decimals: int,
        clock: Callable[[], datetime] = utcnow,
        receipt_timeout: float | None = None,
    ):
        self.w3 = w3
        self.journal = journal
        self.engine = journal.engine
        self.signer = signer
        self.settings = settings
        self.chain_id = chain_id
        self.token = token_contract(w3, token)
        self.decimals = decimals
        self.clock = clock
        self.receipt_timeout = receipt_timeout if receipt_timeout is not None else float(settings.rpc_timeout_seconds)

    # -- planning ------------------------------------------------------------

    def _paid_today(self, day: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(PAYMENT.c.amount_ucr), 0)).where(
                        PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.day == day, PAYMENT.c.status != "failed"
                    )
                ).scalar_one()
            )

    def owed(self) -> dict[str, int]:
        """What each provider is owed (positive ucr), from the ledger."""
        out = {}
        for account, bal in self.journal.balances().items():
            if account.startswith("liabilities:provider:") and bal < 0:
                out[account.removeprefix("liabilities:provider:")] = -bal
        return out

    def plan(self) -> tuple[list[PlannedPayment], list[PaymentRefused]]:
        """Payments due now within the allowlist and caps, and the ones refused (with why)."""
        s = self.settings
        allow = {a.lower() for a in s.allowlist}
        room = s.settle_daily_cap - self._paid_today(f"{self.clock():%Y-%m-%d}")
        plans, refused = [], []
        payees = {provider_account(name).removeprefix("liabilities:provider:"): a for name, a in s.providers.items()}
        for provider, owed in sorted(self.owed().items()):
            if owed < s.settle_threshold:
                continue
            payee = payees.get(provider)
            if payee is None:
                refused.append(PaymentRefused("no_payee", f"wallet.providers has no address for {provider!r}", provider))
                continue
            if payee.lower() not in allow:
                refused.append(PaymentRefused("allowlist", f"{payee} is not in wallet.allowlist", provider))
                continue
            amount = min(owed, s.settle_max_per_tx, room)
            if amount <= 0:
                refused.append(PaymentRefused("daily_cap", "today's settle_daily_cap is used up", provider))
                continue
            out = ucr_to_units(amount, self.decimals)
            plans.append(PlannedPayment(provider, Web3.to_checksum_address(payee), owed, amount, out.ucr, out.units))
            room -= amount
        return plans, refused

    # -- paying --------------------------------------------------------------

    def settle(self, *, dry_run: bool = False) -> SettleReport:
        """Recover unfinished payments, then pay what is due (or only show it, with dry_run)."""
        if dry_run:
            plans, refused = self.plan()
            return SettleReport(planned=tuple(plans), refused=tuple(refused), dry_run=True)
        recovered = self.recover()
        if any(p.status in OPEN_STATUSES for p in recovered):
            pending = PaymentRefused("pending", "an earlier payment is not resolved yet; settle again later")
            return SettleReport(recovered=tuple(recovered), refused=(pending,))
        plans, refused = self.plan()
        paid = []
        for plan in plans:
            try:
                paid.append(self.pay(plan))
            except PaymentRefused as exc:
                refused.append(exc)
                break
            if paid[-1].status != "confirmed":
                break  # unresolved: the next settle recovers it first
        return SettleReport(recovered=tuple(recovered), paid=tuple(paid), refused=tuple(refused))

    def pay(self, plan: PlannedPayment) -> PaymentOutcome:
        """Make one planned payment, writing each step before the next."""
        if self.signer is None:
            raise PaymentRefused("no_signer", "no keystore configured (wallet.keystore_file)", plan.provider)
        sender = self.signer.address
        with rpc("balance_of"):
            have = int(self.token.functions.balanceOf(sender).call())
        if have < plan.units:
            raise PaymentRefused("insufficient_funds", f"the wallet holds {have} token units, needs {plan.units}", plan.provider)
        with rpc("get_transaction_count"):
            chain_nonce = int(self.w3.eth.get_transaction_count(sender, "pending"))
        now = self.clock()
        with self.engine.connect() as conn:
            # Only a signed payment can have used a nonce. Counting one that never got signed would
            # skip its nonce, and every later payment would wait behind the gap forever.
            stored = conn.execute(
                select(func.max(PAYMENT.c.nonce)).where(
                    PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.sender == sender, PAYMENT.c.tx_hash.is_not(None)
                )
            ).scalar()
        nonce = max(chain_nonce, (int(stored) + 1) if stored is not None else 0)
        key = f"settle:{self.chain_id}:{sender}:{nonce}"
        with rpc("build_transaction"):
            tx = self.token.functions.transfer(plan.payee, plan.units).build_transaction(
                {"from": sender, "nonce": nonce, "chainId": self.chain_id}
            )
        signed = self.signer.sign_transaction(tx)
        tx_hash = hexstr(signed.hash)
        with self.engine.begin() as conn:
            try:
                pid = conn.execute(
                    PAYMENT.insert().values(
                        idempotency_key=key, chain_id=self.chain_id, provider=plan.provider, sender=sender,
                        payee=plan.payee, amount_ucr=plan.amount_ucr, cost_ucr=plan.cost_ucr, units=str(plan.units),
                        nonce=nonce, day=f"{now:%Y-%m-%d}", status="signed", tx_hash=tx_hash,
                        raw_tx=hexstr(signed.raw_transaction), created_at=now, updated_at=now,
                    ).returning(PAYMENT.c.id)
                ).scalar_one()
            except IntegrityError:
                raise PaymentRefused("pending", f"nonce {nonce} is taken by another payment", plan.provider) from None
        log.info("wallet payment signed", extra={"key": key, "tx_hash": tx_hash, "provider": plan.provider, "nonce": nonce})
        self._send(signed.raw_transaction)
        self._update(pid, status="sent")
        self._after_send(key)
        return self._await(pid)

    def _send(self, raw: bytes) -> None:
        with rpc("send_raw_transaction"):
            self.w3.eth.send_raw_transaction(raw)

    def _after_send(self, key: str) -> None:
        """A seam for tests: the moment between sending and recording the receipt."""

    def _update(self, pid: int, **values) -> None:  # noqa: ANN003
        with self.engine.begin() as conn:
            conn.execute(update(PAYMENT).where(PAYMENT.c.id == pid).values(updated_at=self.clock(), **values))

    def _row(self, pid: int):  # noqa: ANN202
        with self.engine.connect() as conn:
            return conn.execute(select(PAYMENT).where(PAYMENT.c.id == pid)).first()

    def _outcome(self, row, gas: int | None = None) -> PaymentOutcome:  # noqa: ANN001
        gas = gas if gas is not None else (int(row.gas_wei) if row.gas_wei else None)
        return PaymentOutcome(row.idempotency_key, row.provider, row.payee, int(row.amount_ucr), row.status, row.tx_hash, gas, row.error)

    def _await(self, pid: int) -> PaymentOutcome:
        row = self._row(pid)
        with rpc("wait_for_receipt", tx_hash=row.tx_hash):
            # Caught inside rpc(), which would turn it into RpcUnavailable: not mined in time is no outage.
            try:
                receipt = self.w3.eth.wait_for_transaction_receipt(row.tx_hash, timeout=self.receipt_timeout, poll_latency=0.1)
            except TimeExhausted:
                receipt = None
        if receipt is None:
            return self._outcome(row)  # still sent: the next settle looks it up first
        return self._record(row, receipt)

    def _record(self, row, receipt) -> PaymentOutcome:  # noqa: ANN001
        """Book a mined payment (and its gas) once, under the payment's key."""
        gas = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0) or 0)
        ok = int(receipt["status"]) == 1
        provider = row.provider
        entries = [Entry(GAS_EXPENSE, gas, GAS_COMMODITY), Entry(NATIVE, -gas, GAS_COMMODITY)] if gas else []
        if ok:
            amount, cost = int(row.amount_ucr), int(row.cost_ucr)
            entries += [Entry(provider_account(provider), amount), Entry(WALLET, -cost)]
            if cost > amount:
                entries.append(Entry(DUST_EXPENSE, cost - amount))
        status = "confirmed" if ok else "failed"
        with self.engine.begin() as conn:
            txn = None
            if entries:
                txn = self.journal.post_in(
                    conn, "settlement" if ok else "gas", entries, idempotency_key=row.idempotency_key,
                    memo=f"{'paid' if ok else 'reverted payment to'} {provider} {row.payee}", tx_hash=row.tx_hash,
                ).txn_id
            conn.execute(
                update(PAYMENT).where(PAYMENT.c.id == row.id).values(
                    status=status, gas_used=int(receipt["gasUsed"]), gas_wei=str(gas), block_number=int(receipt["blockNumber"]),
                    ledger_txn_id=txn, error="" if ok else "reverted on chain", updated_at=self.clock(),
                )
            )
        log.info("wallet payment recorded", extra={"key": row.idempotency_key, "status": status, "gas_wei": gas})
        return self._outcome(self._row(row.id), gas)

    # -- recovery ------------------------------------------------------------

    def open_payments(self) -> list:
        """Payments not yet confirmed or failed."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(PAYMENT).where(PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.status.in_(OPEN_STATUSES)).order_by(PAYMENT.c.nonce)
            ).all()

    def recover(self) -> list[PaymentOutcome]:
        """Look every unfinished payment up on chain and finish it; never sends a new one."""
        out = []
        for row in self.open_payments():
            if row.tx_hash is None:
                # Crashed before signing: nothing can have been sent.
                self._update(row.id, status="failed", error="never signed (interrupted)")
                out.append(self._outcome(self._row(row.id)))
                continue
            with rpc("get_receipt", tx_hash=row.tx_hash):
                try:
                    receipt = self.w3.eth.get_transaction_receipt(row.tx_hash)
                except TransactionNotFound:
                    receipt = None
            if receipt is not None:
                out.append(self._record(row, receipt))
                continue
            with rpc("get_transaction", tx_hash=row.tx_hash):
                try:
                    self.w3.eth.get_transaction(row.tx_hash)
                    known = True
                except TransactionNotFound:
                    known = False
            if known:
                out.append(self._await(row.id))
                continue
            with rpc("get_transaction_count"):
                used = int(self.w3.eth.get_transaction_count(row.sender, "latest"))
            if used > int(row.nonce):
                self._update(row.id, status="failed", error="nonce used by another transaction; not paid")
                out.append(self._outcome(self._row(row.id)))
                continue
            # The node never saw it: send the very same bytes (same nonce, same hash).
            self._send(bytes.fromhex(row.raw_tx.removeprefix("0x")))
            self._update(row.id, status="sent")
            out.append(self._await(row.id))
        return out
