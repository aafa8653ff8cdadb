"""Paid reads: the record of each x402 payment, and how the tip scanner tells a read from a tip.

A read's money arrives as an ordinary token transfer to the wallet (EIP-3009 transferWithAuthorization,
sent by the facilitator). So it is not booked here: the tip scanner counts it like a tip, at
wallet.confirmations, reversed on a reorg and booked again if its block comes back. Only the counter
account differs, and the metadata: a transfer matched to a read is booked

  read:<kind>   assets:wallet / income:reads:<kind>     with the post and task of the article read

The paywall (payments/) writes the record around the SDK's settle call:

  claim()    before settling: one row per payment id (<network>:<token>:<payer>:<nonce>); a payment id
             seen before is refused (a replayed or concurrent duplicate payment is never settled twice)
  settled()  the settle answer's transaction hash; the SDK serves the page next (served_at)
  failed()   settle refused or raised: the transfer never happened (a later one is not this read)

A read paid but not served (settle raised after the transfer was sent: the reader got 503) is served once when
the same payment is presented again and its transfer is on chain (landed(), serve_once()): never settled again.

The scanner matches a transfer log to a read by its transaction hash; a transfer from a payer with a read
that has none (still `settling`: the process died between the transaction and settled(); or `failed`: the
facilitator gave up waiting for a receipt that came later) is matched by the nonce in the same transaction's
AuthorizationUsed(payer, nonce) event, read from its receipt: the nonce is the proof it is that read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from kernel.clock import utcnow
from wallet.models import PaidRead

READS = PaidRead.__table__
# keccak256("AuthorizationUsed(address,bytes32)"): emitted by EIP-3009 tokens (USDC, CreditToken3009)
AUTHORIZATION_USED_TOPIC = "0x98de503528ee59b575ef0c0a2576a82497bfc029a5685b209e9ec333479b10a5"


@dataclass(frozen=True)
class Claim:
    """What the paywall knows of a payment before settling it."""

    payment_id: str
    chain_id: int
    token: str
    payer: str
    nonce: str  # 0x + 64 hex
    kind: str
    slug: str
    units: int
    ucr: int
    post_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class Read:
    """A recorded read, as the scanner books it."""

    id: int
    payment_id: str
    kind: str
    slug: str
    post_id: str | None
    task_id: str | None
    tx_hash: str | None


def payment_id(network: str, token: str, payer: str, nonce: str) -> str:
    """The payment id of an EIP-3009 authorization: unique per payer and nonce on one token."""
    return f"{network}:{token.lower()}:{payer.lower()}:{nonce.lower()}"


class PaidReads:
    """The wallet_paid_read rows of one database."""

    def __init__(self, engine: Engine, clock=utcnow):  # noqa: ANN001
        self.engine = engine
        self.clock = clock

    def claim(self, claim: Claim) -> bool:
        """Record a payment about to be settled; False when its payment id was seen before."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(READS).values(
                    payment_id=claim.payment_id, chain_id=claim.chain_id, token=claim.token.lower(),
                    payer=claim.payer.lower(), nonce=claim.nonce.lower(), kind=claim.kind, slug=claim.slug,
                    post_id=claim.post_id, task_id=claim.task_id, units=str(claim.units), ucr=claim.ucr,
                    status="settling", created_at=now, updated_at=now,
                ))
        except IntegrityError:
            return False
        return True

    def settled(self, payment_id: str, tx_hash: str, *, served: bool = False) -> None:
        """The facilitator settled the payment in `tx_hash` (`served`: and the reader is being answered with the page)."""
        now = self.clock()
        values = {"status": "settled", "tx_hash": tx_hash.lower(), "updated_at": now, **({"served_at": now} if served else {})}
        with self.engine.begin() as conn:
            conn.execute(update(READS).where(READS.c.payment_id == payment_id).values(**values))

    def landed(self, payment_id: str, tx_hash: str) -> None:
        """The chain shows the payment's transfer in `tx_hash`, which no settle answer recorded."""
        with self.engine.begin() as conn:
            conn.execute(update(READS).where(READS.c.payment_id == payment_id, READS.c.tx_hash.is_(None)).values(
                status="settled", tx_hash=tx_hash.lower(), updated_at=self.clock()))

    def serve_once(self, payment_id: str) -> bool:
        """Mark a paid read served; False when it was served before (one payment, one page, whoever asks twice)."""
        now = self.clock()
        with self.engine.begin() as conn:
            done = conn.execute(update(READS).where(READS.c.payment_id == payment_id, READS.c.served_at.is_(None))
                                .values(served_at=now, updated_at=now))
        return done.rowcount == 1

    def failed(self, payment_id: str, reason: str) -> None:
        """Settling failed: nothing moved (a settled row is left as it is)."""
        with self.engine.begin() as conn:
            conn.execute(update(READS).where(READS.c.payment_id == payment_id, READS.c.status == "settling").values(
                status="failed", reason=reason[:200], updated_at=self.clock()))

    def get(self, payment_id: str) -> dict | None:
        """The row of a payment id, as a dict (None when unknown)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(READS).where(READS.c.payment_id == payment_id)).mappings().first()
        return dict(row) if row else None

    def rows(self) -> list[dict]:
        """Every row, oldest first."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(READS).order_by(READS.c.id)).mappings()]


def match_read(conn: Connection, *, chain_id: int, token: str, tx_hash: str, sender: str, receipt_logs: Any) -> Read | None:  # noqa: ANN401
    """The read a transfer log pays for, inside the scanner's transaction; None for a tip.

    `receipt_logs()` returns the logs of the transfer's transaction; it is called only when the sender
    has a read without a transaction hash (settling, or failed), to match it by its nonce.
    """
    row = conn.execute(select(READS).where(READS.c.chain_id == chain_id, READS.c.tx_hash == tx_hash.lower())).first()
    if row is None:
        open_reads = conn.execute(select(READS).where(
            READS.c.chain_id == chain_id, READS.c.payer == sender.lower(), READS.c.token == token.lower(),
            READS.c.status.in_(("settling", "failed")), READS.c.tx_hash.is_(None),
        )).all()
        if not open_reads:
            return None
        nonces = _used_nonces(receipt_logs(), token, sender)
        row = next((r for r in open_reads if r.nonce in nonces), None)
        if row is None:
            return None
        conn.execute(update(READS).where(READS.c.id == row.id).values(
            status="settled", tx_hash=tx_hash.lower(), updated_at=utcnow()))
    return Read(row.id, row.payment_id, row.kind, row.slug, row.post_id, row.task_id, tx_hash.lower())


def _hex(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = value.hex() if hasattr(value, "hex") and not isinstance(value, str) else str(value)
    return (text if text.startswith("0x") else "0x" + text).lower()


def _used_nonces(logs: Any, token: str, authorizer: str) -> set[str]:  # noqa: ANN401
    """Nonces of AuthorizationUsed(authorizer, nonce) events the token emitted in these logs."""
    found = set()
    for entry in logs or ():
        topics = [_hex(t) for t in entry["topics"]]
        if (_hex(entry["address"]) == token.lower() and len(topics) == 3 and topics[0] == AUTHORIZATION_USED_TOPIC
                and topics[1][-40:] == authorizer.lower()[-40:]):
            found.add(topics[2])
    return found


def read_kind(counted_kind: str) -> str | None:
    """The read kind of a counted log's kind ("read:article" -> "article"); None for a tip or funding."""
    return counted_kind.removeprefix("read:") if counted_kind.startswith("read:") else None


def counted_kind(kind: str) -> str:
    """The counted log's kind of a read ("article" -> "read:article")."""
    return f"read:{kind}"
