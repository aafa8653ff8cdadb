"""What a person books by hand: a reversal of a mistaken transaction, a payment to a provider (ledger mode).

    reverse_by_hand(journal, txn_id, reason)          -> Posted   a correcting transaction, never an edit
    pay_provider(journal, "openai", ucr, ref="inv-7") -> Posted   liabilities:provider:openai -> assets:wallet

The ledger is append-only: a reversal is a new transaction of kind
`reversal` naming the one it undoes (`reverses_id`), with the opposite
postings. Refused (ManualRefused, nothing written):

    the transaction does not exist, or is already reversed, or is itself a reversal
    a compute charge whose hold the budget still owns (status open or presumed: a late
        answer still books its correction against it)
    a transaction that mirrors the chain (tip, funding, settlement, gas): the wallet's
        scanner and settlement book and reverse those themselves, following the blocks

A payment to a provider moves what is owed out of the wallet: the liability
and the wallet shrink by the same amount, so `available` does not move. It is
idempotent by `ref` (the same ref again returns the first payment; the same
ref with another amount or provider is refused) and refuses paying more than
is owed. The owed balance is read under a lock on both balance rows (SQLite:
the write transaction's BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE),
so two payments at once cannot both pass the check.
"""

from __future__ import annotations

import uuid

from kernel.money import format_credits
from ledger.accounts import WALLET, provider_account
from ledger.errors import LedgerError
from ledger.journal import Entry, Journal, Posted
from ledger.models import COMMODITY

REVERSAL = "reversal"
PROVIDER_PAYMENT = "provider-payment"
# Kinds booked by the wallet room from the chain: its scanner and settlement reverse them on a reorg.
CHAIN_KINDS = ("tip", "funding", "settlement", "gas")
BUDGET_OWNED = ("open", "presumed")


class ManualRefused(LedgerError):
    """A hand-made booking the ledger refuses; the message says why and what to do instead."""

    retryable = False


def reverse_by_hand(journal: Journal, txn_id: int, reason: str) -> Posted:
    """Append the reversal of `txn_id` with `reason` as its memo; ManualRefused when it may not be reversed."""
    reason = reason.strip()
    if not reason:
        raise ManualRefused("say why with --reason: the reversal carries it in the ledger for good")
    q = journal.sql.q
    with journal.reading() as cur:
        cur.execute(q("SELECT kind, idempotency_key, reverses_id FROM ledger_txn WHERE id = ?"), (txn_id,))
        row = cur.fetchone()
        if row is None:
            raise ManualRefused(f"there is no transaction {txn_id}")
        kind, key, reverses = row
        if reverses is not None:
            raise ManualRefused(f"transaction {txn_id} is itself the reversal of {reverses}; book what is right "
                                "as a new transaction instead of reversing a reversal")
        cur.execute(q("SELECT id FROM ledger_txn WHERE reverses_id = ?"), (txn_id,))
        done = cur.fetchone()
        if done is not None:
            raise ManualRefused(f"transaction {txn_id} is already reversed by transaction {done[0]}")
        if kind in CHAIN_KINDS:
            raise ManualRefused(f"transaction {txn_id} ({kind}) mirrors the chain: the wallet books and reverses it "
                                "by following the blocks, so a hand reversal would disagree with the chain")
        hold = _hold_of(key)
        if kind == "compute" and hold is not None:
            cur.execute(q("SELECT status FROM ledger_reservation WHERE id = ?"), (hold,))
            status = cur.fetchone()
            if status is not None and status[0] in BUDGET_OWNED:
                raise ManualRefused(f"transaction {txn_id} is the charge of reservation {hold}, which the budget "
                                    f"still owns (status {status[0]}): it books the correction itself when the "
                                    "provider's usage arrives")
    try:
        posted = journal.reverse(txn_id, idempotency_key=f"{REVERSAL}:{txn_id}", memo=reason)
    except LedgerError as exc:  # reversed by someone else meanwhile
        raise ManualRefused(str(exc)) from None
    if not posted.created:
        raise ManualRefused(f"transaction {txn_id} is already reversed by transaction {posted.txn_id}")
    return posted


def _hold_of(key: str) -> int | None:
    """The reservation id of a budget key "compute:<id>[:usage]", else None."""
    parts = key.split(":")
    if len(parts) >= 2 and parts[0] == "compute" and parts[1].isdigit():
        return int(parts[1])
    return None


def pay_provider(journal: Journal, provider: str, amount: int, *, ref: str | None = None, memo: str = "") -> Posted:
    """Book paying `amount` ucr of what is owed to `provider` out of the wallet; idempotent by `ref`."""
    if type(amount) is not int or amount <= 0:
        raise ManualRefused(f"a payment must be a positive amount, got {amount!r}")
    owed_account = provider_account(provider)
    key = f"{PROVIDER_PAYMENT}:{ref}" if ref else f"{PROVIDER_PAYMENT}:{uuid.uuid4()}"
    sql = journal.sql
    with journal.writing() as w:
        cur = w.cursor
        cur.execute(sql.q("SELECT id FROM ledger_txn WHERE idempotency_key = ?"), (key,))
        found = cur.fetchone()
        if found is not None:
            _same_payment(cur, sql, int(found[0]), owed_account, amount, ref)
            return Posted(int(found[0]), False)
        lock = " FOR UPDATE" if sql.pg else ""
        cur.execute(
            sql.q(f"SELECT account, balance FROM ledger_balance WHERE commodity = ? AND account IN (?, ?) "
                  f"ORDER BY account{lock}"),
            (COMMODITY, WALLET, owed_account),
        )
        balances = {account: int(balance) for account, balance in cur.fetchall()}
        owed = -balances.get(owed_account, 0)
        if amount > owed:
            raise ManualRefused(f"{provider} is owed {format_credits(max(owed, 0))} credits "
                                f"({owed_account}); paying {format_credits(amount)} would be more than that")
        text = memo or f"paid {provider}" + (f" ref {ref}" if ref else "")
        return journal.post_cursor(
            w, PROVIDER_PAYMENT, [Entry(owed_account, amount), Entry(WALLET, -amount)], idempotency_key=key, memo=text,
        )


def _same_payment(cur, sql, txn_id: int, owed_account: str, amount: int, ref: str | None) -> None:  # noqa: ANN001
    """Refuse a ref used before for another provider or amount (a typo would otherwise pass silently)."""
    cur.execute(sql.q("SELECT account, amount FROM ledger_posting WHERE txn_id = ?"), (txn_id,))
    postings = {account: int(value) for account, value in cur.fetchall()}
    if postings.get(owed_account) != amount:
        paid = ", ".join(f"{a} {format_credits(v)}" for a, v in sorted(postings.items()) if v > 0)
        raise ManualRefused(f"ref {ref!r} was already used by transaction {txn_id} ({paid}); "
                            "use a new --ref for another payment")
