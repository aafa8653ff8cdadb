"""Pay providers on chain for the compute they sold: never twice, never past a cap.

A provider is paid when liabilities:provider:<name> passes
wallet.settle_threshold, to its address in wallet.providers, which must be
in wallet.allowlist; one payment is at most wallet.settle_max_per_tx and a
UTC day's payments at most wallet.settle_daily_cap.

One run at a time (wallet.settlelock): settle() takes a per-database try-lock
that dies with its holder; a second run finds it taken and reports "another
settle is running". Under the lock a run recovers what is open, then, right
before each payment is signed, re-reads what is open and what is owed.

A payment's life (wallet_payment.status):

    signed --sent--> sent --receipt--> mined --`confirmations` deep, block canonical--> confirmed (booked)
      |                |                 |                                         \--> failed (reverted: gas booked)
      +----------------+-----------------+--- our hash unseen, its nonce used at a safe depth, on
                                              ABSENT_LOOKS looks at rising heads --> failed (not paid)
    confirmed / failed --block reorged out--> booking reversed, back to sent (the same bytes re-sent if the nonce is free)

Order of writes (a crash between any two steps is safe):
  1. sign with the next nonce (nothing written: a crash here leaves the nonce free)
  2. payment row with tx hash + signed bytes (status signed, idempotency key
     settle:<chain>:<sender>:<nonce>)                          <- before sending
  3. send the signed bytes (status sent)
  4. receipt `wallet.confirmations` blocks deep at the canonical block hash
     -> ledger transaction (status confirmed | failed)

Looking an open payment up (each run's recovery, and the wait after sending):
  receipt in a canonical block, deep enough  -> booked
  receipt not deep enough, or not canonical  -> wait (mined / sent)
  the node has the transaction               -> wait
  its nonce is still free                    -> re-send the very same bytes (same hash: it cannot pay twice)
  nonce used, not yet at a safe depth        -> wait
  nonce used at head - confirmations, our hash unseen -> the block that used the nonce is found (binary
      search on the nonce count between the head at signing and the safe block) and read: our hash there
      means ours, mined (wait for its receipt); another hash is one "look"; failed only after ABSENT_LOOKS
      such looks at rising heads. A used nonce with an open payment is presumed ours until then: a node
      a block behind answers "not found" for our own mined payment.
While any payment is open nothing new is paid (settle reports "pending" and why).

Booked payments whose block is within REORG_WINDOW of the head are checked first:
a changed block hash (and no receipt in a canonical block) means the payment was
reorged out: its booking is reversed (a correcting transaction, key
reorg:<booking key>; the ledger is append-only) and it is open again. A node
whose head is below the payment's block is behind: nothing is reversed.

The node refusing a broadcast (a JSON-RPC error: nonce too low, already known,
underpriced) decides nothing; the chain does, at the next look. Too little
native coin for the gas raises InsufficientGas: settlement pauses, the daemon runs on.

Ledger of a confirmed payment (kind "settlement"; key settle:<chain>:<sender>:<nonce>[:<n>] for the n-th re-booking):
  liabilities:provider:<name>  +amount       CR
  assets:wallet                -cost         CR   (cost = amount rounded up to whole token units)
  expenses:dust                +cost-amount  CR   (only when the token has < 6 decimals)
  expenses:gas                 +gas          WEI  (native coin, in wei: a commodity of its own)
  assets:native                -gas          WEI
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from web3 import Web3

from config.settings import WalletSettings
from kernel.clock import utcnow
from ledger.accounts import DUST, GAS, NATIVE, PROVIDERS, WALLET, leaf, prefix, provider_account
from ledger.journal import Entry, Journal
from wallet.chain import hexstr
from wallet.errors import InsufficientGas, PaymentRefused, TransactionRejected
from wallet.keystore import Signer
from wallet.models import Payment
from wallet.paychain import PayChain, Receipt, Web3PayChain
from wallet.settlelock import SettleLock
from wallet.units import ucr_to_units

log = logging.getLogger(__name__)

PAYMENT = Payment.__table__
GAS_COMMODITY = "WEI"
OPEN_STATUSES = ("planned", "signed", "sent", "mined")
BOOKED_STATUSES = ("confirmed", "failed")
ABSENT_LOOKS = 2  # looks (at rising heads) that must miss our hash before its payment is given up
REORG_WINDOW = 64  # blocks below the head in which booked payments are checked for reorgs
POLL_SECONDS = 0.1
BUSY_NOTE = "another settle is running on this database; it pays what is due, nothing was done here"


def booking_key(key: str, n: int) -> str:
    """The ledger key of a payment's n-th booking (0: the payment's own key)."""
    return key if n == 0 else f"{key}:{n}"


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
    status: str  # signed|sent|mined|confirmed|failed
    tx_hash: str | None
    gas_wei: int | None = None
    error: str = ""
    note: str = ""  # why an open payment is still open


@dataclass(frozen=True)
class SettleReport:
    """What one settle did: recovered payments, new payments, plans (dry run), refusals."""

    recovered: tuple[PaymentOutcome, ...] = ()
    paid: tuple[PaymentOutcome, ...] = ()
    planned: tuple[PlannedPayment, ...] = ()
    refused: tuple[PaymentRefused, ...] = ()
    dry_run: bool = False
    note: str = ""
    busy: bool = False  # another run held the settle lock: this one did nothing


class Settler:
    """Settles provider liabilities with ERC-20 transfers from the agent's address."""

    def __init__(
        self,
        w3: Web3 | None,
        journal: Journal,
        signer: Signer | None,
        settings: WalletSettings,
        *,
        chain_id: int,
        token: str,
        decimals: int,
        clock: Callable[[], datetime] = utcnow,
        receipt_timeout: float | None = None,
        chain: PayChain | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.journal = journal
        self.engine = journal.engine
        self.signer = signer
        self.settings = settings
        self.chain_id = chain_id
        self.chain: PayChain = chain if chain is not None else Web3PayChain(w3, token)
        self.decimals = decimals
        self.clock = clock
        self.receipt_timeout = receipt_timeout if receipt_timeout is not None else float(settings.rpc_timeout_seconds)
        self.sleep = sleep
        self.monotonic = monotonic
        self.lock = SettleLock(self.engine)

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
            if account.startswith(prefix(PROVIDERS)) and bal < 0:
                out[leaf(account, PROVIDERS)] = -bal
        return out

    def plan(self) -> tuple[list[PlannedPayment], list[PaymentRefused]]:
        """Payments due now within the allowlist and caps, and the ones refused (with why)."""
        s = self.settings
        allow = {a.lower() for a in s.allowlist}
        room = s.settle_daily_cap - self._paid_today(f"{self.clock():%Y-%m-%d}")
        plans, refused = [], []
        payees = {leaf(provider_account(name), PROVIDERS): a for name, a in s.providers.items()}
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
        """Recover unfinished payments, then pay what is due (or only show it, with dry_run); one run at a time."""
        if dry_run:
            plans, refused = self.plan()
            return SettleReport(planned=tuple(plans), refused=tuple(refused), dry_run=True)
        if not self.lock.acquire():
            log.info("wallet settle skipped: another run holds the settle lock")
            return SettleReport(note=BUSY_NOTE, busy=True)
        try:
            return self._settle()
        finally:
            self.lock.release()

    def _settle(self) -> SettleReport:
        recovered = self._recover()
        waiting = [p for p in recovered if p.status in OPEN_STATUSES]
        if waiting:
            return SettleReport(recovered=tuple(recovered), refused=(pending(waiting),))
        plans, refused = self.plan()
        paid: list[PaymentOutcome] = []
        for plan in plans:
            try:
                paid.append(self._pay(plan))
            except InsufficientGas:
                raise  # settlement pauses until the sender is funded: the daemon records why and runs on
            except PaymentRefused as exc:
                refused.append(exc)
                break
            if paid[-1].status in OPEN_STATUSES:
                refused.append(pending([paid[-1]]))
                break  # unresolved: the next settle recovers it first
            if paid[-1].status != "confirmed":
                break  # reverted: what is owed is still owed, planned afresh next run
        return SettleReport(recovered=tuple(recovered), paid=tuple(paid), refused=tuple(refused))

    def _next_stored_nonce(self, sender: str) -> int:
        with self.engine.connect() as conn:
            # Only a signed payment can have used a nonce. Counting one that never got signed would
            # skip its nonce, and every later payment would wait behind the gap forever.
            stored = conn.execute(
                select(func.max(PAYMENT.c.nonce)).where(
                    PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.sender == sender, PAYMENT.c.tx_hash.is_not(None)
                )
            ).scalar()
        return int(stored) + 1 if stored is not None else 0

    def _pay(self, plan: PlannedPayment) -> PaymentOutcome:
        """Make one planned payment (the settle lock held), writing each step before the next."""
        if self.signer is None:
            raise PaymentRefused("no_signer", "no keystore configured (wallet.keystore_file)", plan.provider)
        sender = self.signer.address
        # Re-read under the lock, right before signing: a plan is only as good as the ledger it was read from.
        if self.open_payments():
            raise PaymentRefused("pending", "a payment opened since this run planned", plan.provider)
        owed = self.owed().get(plan.provider, 0)
        if owed < plan.amount_ucr:
            raise PaymentRefused(
                "replan", f"owed {owed} ucr now, less than the {plan.amount_ucr} planned; the next run plans afresh",
                plan.provider,
            )
        have = self.chain.token_balance(sender)
        if have < plan.units:
            raise PaymentRefused("insufficient_funds", f"the wallet holds {have} token units, needs {plan.units}", plan.provider)
        nonce = max(self.chain.nonce(sender, "pending"), self._next_stored_nonce(sender))
        unsigned = self.chain.transfer(sender, plan.payee, plan.units, nonce, self.chain_id)
        native = self.chain.native_balance(sender)
        if native < unsigned.max_gas_wei:
            raise InsufficientGas(native, unsigned.max_gas_wei, sender, plan.provider)
        sign_head = self.chain.head()  # no block up to this one can hold a transaction not yet signed
        self.lock.check()
        signed = self.signer.sign_transaction(unsigned.tx)
        tx_hash = hexstr(signed.hash)
        key = f"settle:{self.chain_id}:{sender}:{nonce}"
        now = self.clock()
        with self.engine.begin() as conn:
            try:
                pid = conn.execute(
                    PAYMENT.insert().values(
                        idempotency_key=key, chain_id=self.chain_id, provider=plan.provider, sender=sender,
                        payee=plan.payee, amount_ucr=plan.amount_ucr, cost_ucr=plan.cost_ucr, units=str(plan.units),
                        nonce=nonce, day=f"{now:%Y-%m-%d}", status="signed", tx_hash=tx_hash,
                        raw_tx=hexstr(signed.raw_transaction), max_gas_wei=str(unsigned.max_gas_wei), sign_head=sign_head,
                        created_at=now, updated_at=now,
                    ).returning(PAYMENT.c.id)
                ).scalar_one()
            except IntegrityError:
                raise PaymentRefused("pending", f"nonce {nonce} is taken by another payment", plan.provider) from None
        log.info("wallet payment signed", extra={"key": key, "tx_hash": tx_hash, "provider": plan.provider, "nonce": nonce})
        self._broadcast(self._row(pid))
        self._after_send(key)
        return self._await(pid)

    def _send(self, raw: bytes) -> None:
        self.chain.send_raw(raw)

    def _after_send(self, key: str) -> None:
        """A seam for tests: the moment between sending and recording the receipt."""

    def _broadcast(self, row) -> bool:  # noqa: ANN001
        """Send a payment's stored bytes; False when the node refused them (the chain decides at the next look)."""
        try:
            self._send(bytes.fromhex(row.raw_tx.removeprefix("0x")))
        except TransactionRejected as exc:
            need = int(row.max_gas_wei or 0)
            have = self.chain.native_balance(row.sender) if need else 0
            if need and have < need:
                self._update(row.id, error=f"too little native coin for gas: {have} of {need} wei")
                raise InsufficientGas(have, need, row.sender, row.provider) from None
            # nonce too low, already known, underpriced...: the message is the node's; its nonce and
            # its receipt, looked up next, say what became of the payment.
            self._update(row.id, error=f"node refused the broadcast (JSON-RPC {exc.code})")
            log.warning("wallet payment broadcast refused",
                        extra={"key": row.idempotency_key, "code": exc.code, "node_message": exc.node_message})
            return False
        if row.status in ("planned", "signed"):
            self._update(row.id, status="sent")
        return True

    def _update(self, pid: int, **values) -> None:  # noqa: ANN003
        with self.engine.begin() as conn:
            conn.execute(update(PAYMENT).where(PAYMENT.c.id == pid).values(updated_at=self.clock(), **values))

    def _row(self, pid: int):  # noqa: ANN202
        with self.engine.connect() as conn:
            return conn.execute(select(PAYMENT).where(PAYMENT.c.id == pid)).first()

    def _outcome(self, row, note: str = "") -> PaymentOutcome:  # noqa: ANN001
        gas = int(row.gas_wei) if row.gas_wei else None
        return PaymentOutcome(
            row.idempotency_key, row.provider, row.payee, int(row.amount_ucr), row.status, row.tx_hash, gas, row.error, note,
        )

    def _await(self, pid: int) -> PaymentOutcome:
        """Look a payment up until it is resolved or receipt_timeout has passed."""
        deadline = self.monotonic() + self.receipt_timeout
        while True:
            outcome = self._resolve(self._row(pid))
            if outcome.status not in OPEN_STATUSES or self.monotonic() >= deadline:
                return outcome
            self.sleep(POLL_SECONDS)

    # -- looking a payment up ------------------------------------------------

    def _resolve(self, row) -> PaymentOutcome:  # noqa: ANN001
        """One look at an open payment on chain; books it, gives it up, re-sends it, or says why it waits."""
        if row.tx_hash is None:
            # Crashed before signing: nothing can have been sent.
            self._update(row.id, status="failed", error="never signed (interrupted)")
            return self._outcome(self._row(row.id))
        chain, conf = self.chain, self.settings.confirmations
        head = chain.head()
        receipt = chain.receipt(row.tx_hash)
        if receipt is not None:
            if chain.block_hash(receipt.block_number) != receipt.block_hash:
                # A receipt from a block the node's chain does not hold (a fork, or a node behind): no answer yet.
                self._update(row.id, status="sent", block_number=None, block_hash=None)
                return self._outcome(self._row(row.id), f"receipt in block {receipt.block_number}, not on the canonical chain")
            depth = head - receipt.block_number
            if depth < conf:
                self._update(row.id, status="mined", block_number=receipt.block_number, block_hash=receipt.block_hash,
                             absent_looks=0, absent_head=None)
                return self._outcome(self._row(row.id), f"mined in block {receipt.block_number}: {max(depth, 0)} of {conf} confirmations")
            return self._record(row, receipt)
        if chain.knows(row.tx_hash):
            self._update(row.id, status="sent", block_number=None, block_hash=None, absent_looks=0, absent_head=None)
            used = chain.nonce(row.sender, "latest")
            if used < int(row.nonce):
                # Not ours to fill: signing another transfer for that nonce could let both be mined.
                return self._outcome(self._row(row.id), f"the node holds it behind a nonce gap: nonce {used} is unused "
                                     "(a transaction from this key elsewhere was dropped); it is mined once that nonce is")
            return self._outcome(self._row(row.id), "the node holds it; not mined yet")
        nonce = int(row.nonce)
        if chain.nonce(row.sender, "latest") <= nonce:
            # The nonce is free: the node never saw it, dropped it, or a reorg took its block. The very same
            # bytes again: same nonce, same hash, so it can be mined at most once.
            accepted = self._broadcast(row)
            self._update(row.id, block_number=None, block_hash=None, absent_looks=0, absent_head=None,
                         **({"status": "sent"} if accepted else {}))
            return self._outcome(self._row(row.id), "re-sent the same signed transaction" if accepted else
                                 "the node refused the re-sent transaction; looking again next run")
        safe = head - conf
        if safe < 0 or chain.nonce(row.sender, safe) <= nonce:
            return self._outcome(row, f"nonce {nonce} is used by a transaction less than {conf} blocks deep; waiting")
        # Nonce used at a safe depth and our hash not found: presumed ours (a node behind says "not found"
        # too) until the block that used the nonce shows another transaction, on enough looks at rising heads.
        user = self._nonce_user(row, safe)
        if user != "other":
            self._update(row.id, absent_looks=0, absent_head=None)
            why = (f"the block that used nonce {nonce} holds our transaction; its receipt is not served yet" if user == "ours"
                   else f"the block that used nonce {nonce} cannot be read yet; presumed ours")
            return self._outcome(self._row(row.id), why)
        looks, last = int(row.absent_looks), row.absent_head
        if last is None or head > int(last):
            looks, last = looks + 1, head
        if looks >= ABSENT_LOOKS:
            self._update(row.id, status="failed", absent_looks=looks, absent_head=last,
                         error=f"nonce {nonce} used by another transaction {conf}+ blocks deep; ours not found on {looks} looks: not paid")
            log.warning("wallet payment given up: its nonce went to another transaction",
                        extra={"key": row.idempotency_key, "tx_hash": row.tx_hash, "looks": looks})
            return self._outcome(self._row(row.id))
        self._update(row.id, absent_looks=looks, absent_head=last)
        return self._outcome(
            self._row(row.id), f"nonce {nonce} is used but our transaction is not found (look {looks} of {ABSENT_LOOKS}); "
                               "presumed ours until a later block confirms it is absent",
        )

    def _nonce_user(self, row, safe: int) -> str | None:  # noqa: ANN001
        """Whose transaction used the row's nonce at or below block `safe`: "ours", "other", or None (cannot tell yet).

        Binary search for the first block whose nonce count passes ours, then read that block: proof by
        the chain's own content, not by a look-up that a node behind answers "not found".
        """
        chain, sender, nonce = self.chain, row.sender, int(row.nonce)
        if row.sign_head is None:
            return "other"  # a payment from before sign_head was kept: the count at a safe depth is all there is
        # A block already `confirmations` deep when we signed is final and cannot hold our transaction.
        lo, hi = int(row.sign_head) - self.settings.confirmations - 1, safe
        if lo >= 0 and chain.nonce(sender, lo) > nonce:
            return "other"  # used in a final block before our transaction was signed
        lo = min(lo, hi - 1)
        while hi - lo > 1:  # count(lo) <= nonce < count(hi)
            mid = (lo + hi) // 2
            if chain.nonce(sender, mid) > nonce:
                hi = mid
            else:
                lo = mid
        found = chain.sender_tx(hi, sender, nonce)
        if found is None:
            return None
        return "ours" if found.lower() == row.tx_hash.lower() else "other"

    def _entries(self, provider: str, amount: int, cost: int, ok: bool, gas: int) -> list[Entry]:
        entries = [Entry(GAS, gas, GAS_COMMODITY), Entry(NATIVE, -gas, GAS_COMMODITY)] if gas else []
        if ok:
            entries += [Entry(provider_account(provider), amount), Entry(WALLET, -cost)]
            if cost > amount:
                entries.append(Entry(DUST, cost - amount))
        return entries

    def _record(self, row, receipt: Receipt) -> PaymentOutcome:  # noqa: ANN001
        """Book a mined, confirmed payment (and its gas) once, under its n-th booking key."""
        ok, n = receipt.ok, int(row.bookings)
        entries = self._entries(row.provider, int(row.amount_ucr), int(row.cost_ucr), ok, receipt.gas_wei)
        status = "confirmed" if ok else "failed"
        with self.journal.writer.begin() as conn:
            txn = None
            if entries:
                txn = self.journal.post_in(
                    conn, "settlement" if ok else "gas", entries, idempotency_key=booking_key(row.idempotency_key, n),
                    memo=f"{'paid' if ok else 'reverted payment to'} {row.provider} {row.payee}", tx_hash=row.tx_hash,
                ).txn_id
            conn.execute(
                update(PAYMENT).where(PAYMENT.c.id == row.id, PAYMENT.c.bookings == n).values(
                    status=status, gas_used=receipt.gas_used, gas_wei=str(receipt.gas_wei), block_number=receipt.block_number,
                    block_hash=receipt.block_hash, ledger_txn_id=txn, bookings=n + 1, absent_looks=0, absent_head=None,
                    error="" if ok else "reverted on chain", updated_at=self.clock(),
                )
            )
        log.info("wallet payment recorded", extra={"key": row.idempotency_key, "status": status, "gas_wei": receipt.gas_wei})
        return self._outcome(self._row(row.id))

    # -- reorgs --------------------------------------------------------------

    def _check_booked(self) -> int:
        """Reverse booked payments whose block left the canonical chain; returns how many."""
        head = self.chain.head()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PAYMENT).where(
                    PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.status.in_(BOOKED_STATUSES),
                    PAYMENT.c.block_hash.is_not(None), PAYMENT.c.block_number >= head - REORG_WINDOW,
                ).order_by(PAYMENT.c.nonce)
            ).all()
        reversed_count = 0
        for row in rows:
            if int(row.block_number) > head:
                continue  # the node is behind the block we saw: it has not caught up, nothing was reorged
            canonical = self.chain.block_hash(int(row.block_number))
            if canonical is None or canonical == row.block_hash:
                continue
            receipt = self.chain.receipt(row.tx_hash)
            if (receipt is not None and receipt.ok == (row.status == "confirmed")
                    and self.chain.block_hash(receipt.block_number) == receipt.block_hash):
                # Mined again in another block: still paid exactly as booked.
                self._update(row.id, block_number=receipt.block_number, block_hash=receipt.block_hash)
                continue
            self._reverse(row)
            reversed_count += 1
        return reversed_count

    def _reverse(self, row) -> None:  # noqa: ANN001
        """Undo a booked payment whose block was reorged out, with a correcting transaction; it is open again."""
        n = int(row.bookings) - 1
        with self.journal.writer.begin() as conn:
            if row.ledger_txn_id is not None:
                booked = self._entries(row.provider, int(row.amount_ucr), int(row.cost_ucr), row.status == "confirmed",
                                       int(row.gas_wei or 0))
                self.journal.post_in(
                    conn, "reversal", [Entry(e.account, -e.amount, e.commodity) for e in booked],
                    idempotency_key=f"reorg:{booking_key(row.idempotency_key, n)}",
                    memo=f"reorg removed payment to {row.provider} {row.payee}", tx_hash=row.tx_hash,
                    reverses_id=row.ledger_txn_id,
                )
            conn.execute(
                update(PAYMENT).where(PAYMENT.c.id == row.id, PAYMENT.c.status == row.status).values(
                    status="sent", ledger_txn_id=None, block_number=None, block_hash=None, gas_used=None, gas_wei=None,
                    absent_looks=0, absent_head=None, error=f"block {row.block_number} reorged out: booking reversed",
                    updated_at=self.clock(),
                )
            )
        log.warning("wallet payment reorged out; booking reversed",
                    extra={"key": row.idempotency_key, "tx_hash": row.tx_hash, "block": int(row.block_number)})

    # -- recovery ------------------------------------------------------------

    def open_payments(self) -> list:
        """Payments not yet confirmed or failed."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(PAYMENT).where(PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.status.in_(OPEN_STATUSES)).order_by(PAYMENT.c.nonce)
            ).all()

    def _recover(self) -> list[PaymentOutcome]:
        self._check_booked()
        return [self._await(row.id) for row in self.open_payments()]

    def recover(self) -> list[PaymentOutcome]:
        """Check booked payments for reorgs and look every open one up; never pays anything new ([] when another run holds the lock)."""
        if not self.lock.acquire():
            return []
        try:
            return self._recover()
        finally:
            self.lock.release()


def pending(waiting: list[PaymentOutcome]) -> PaymentRefused:
    """The refusal a run reports while earlier payments are open, saying why each one waits."""
    why = "; ".join(f"{p.key} ({p.status}): {p.note or p.error or 'not resolved yet'}" for p in waiting)
    return PaymentRefused("pending", f"an earlier payment is not resolved yet; settle again later. {why}")
