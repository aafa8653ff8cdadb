"""What one metered attempt paid over x402: the handover between the meter and the paying transport.

    MeteredLLM._call     with call_scope():        one per logical call, across the router's attempts
    Meter.send             with attempt(...) as p:  one per attempt: its reservation is the payment cap
                             provider.send(...)     the transport (agents/llm/x402pay.py) reads the
                                                    attempt and records on it: refused, or the payment
                                                    it signed, whether that left, and what settled
                           book(budget, hold, p)    after the reply, by what was recorded:

    recorded                        ledger (ledger.budget.Budget)                  payment status
    -----------------------------   --------------------------------------------   --------------
    refused by the policy           release the hold; SpendRefused raised          nothing signed
    signed, never left              release the hold                               void
    left, settled (tx hash)         pay(settled amount, key, tx): expenses:        settled
                                    compute:<agent> against assets:wallet
    left, no settlement seen        pay(authorised amount, key): the most it can   pending
    (timeout, reset, 402, 5xx)      cost, booked until the chain says otherwise

A payment's key is `x402:<network>:<payer>:<nonce>`: it is booked once, whatever the number of
attempts. A payment that left without a settlement stays the call's outstanding payment: the next
attempt of the same call resends that same signed payment (while it is valid) instead of signing a
new one, so a timeout after the request was sent never pays twice.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agents.llm.errors import SpendRefused
from agents.llm.spendpolicy import Approval, SpendPolicy
from ledger.budget import Budget, Hold

SETTLED, PENDING, VOID = "settled", "pending", "void"
REUSE_MARGIN_SECONDS = 30  # an outstanding payment this close to its deadline is not resent


@dataclass
class Payment:
    """One signed x402 payment: its terms, whether it left, and its settlement when one came back."""

    key: str
    scheme: str
    network: str
    payer: str
    pay_to: str
    units: int  # authorised: exact's price, upto's maximum
    ucr: int  # the authorised amount in ucr (rounded up)
    valid_before: int  # unix seconds; after it the payment can never settle
    approval: Approval
    payload: Any  # the SDK's PaymentPayload, resent as it is on a retry of the same call
    sent: bool = False
    settled_units: int | None = None
    settled_ucr: int | None = None
    tx_hash: str | None = None

    @property
    def status(self) -> str:
        """settled (a tx hash came back), pending (left, no settlement seen) or void (never left)."""
        if self.tx_hash is not None:
            return SETTLED
        return PENDING if self.sent else VOID

    @property
    def cost(self) -> int:
        """What to book: the settled amount, else the most the payment can cost."""
        return self.settled_ucr if self.settled_ucr is not None else self.ucr


@dataclass
class CallPayments:
    """The payments of one logical call, across the router's attempts."""

    outstanding: Payment | None = None  # left, no settlement seen: resent instead of signing anew

    def reusable(self, now: float | None = None) -> Payment | None:
        """The outstanding payment, while it can still settle."""
        p = self.outstanding
        if p is None or p.valid_before <= (now if now is not None else time.time()) + REUSE_MARGIN_SECONDS:
            return None
        return p


@dataclass
class PaidAttempt:
    """One attempt as the paying transport sees it: the cap, and what it recorded."""

    agent: str
    cap: int  # ucr: the attempt's reservation, the most one payment may cost
    call: CallPayments
    policy: SpendPolicy | None = None
    approval: Approval | None = None  # set by the policy's before-hook, taken by the payment it signs
    refused: SpendRefused | None = None
    payments: list[Payment] = field(default_factory=list)


_CALL: contextvars.ContextVar[CallPayments | None] = contextvars.ContextVar("x402_call", default=None)
_ATTEMPT: contextvars.ContextVar[PaidAttempt | None] = contextvars.ContextVar("x402_attempt", default=None)


@contextmanager
def call_scope() -> Iterator[CallPayments]:
    """One logical call: its attempts share an outstanding payment (reused, never signed twice)."""
    outer = _CALL.get()
    if outer is not None:
        yield outer
        return
    token = _CALL.set(CallPayments())
    try:
        yield _CALL.get()  # type: ignore[misc]
    finally:
        _CALL.reset(token)


@contextmanager
def attempt(agent: str, cap: int) -> Iterator[PaidAttempt]:
    """One metered attempt: the paying transport records on what this yields."""
    call = _CALL.get() or CallPayments()
    token = _ATTEMPT.set(PaidAttempt(agent, cap, call))
    try:
        yield _ATTEMPT.get()  # type: ignore[misc]
    finally:
        _ATTEMPT.reset(token)


def current() -> PaidAttempt | None:
    """The attempt being sent in this task, if any (the paying transport pays only inside one)."""
    return _ATTEMPT.get()


def book(budget: Budget, hold: Hold, paid: PaidAttempt, memo: str) -> int | None:
    """Settle the hold by what the attempt paid; None when it paid nothing (the meter settles as usual).

    Returns the ucr booked. Raises nothing for a refusal: the meter releases the hold and raises it.
    """
    sent = [p for p in paid.payments if p.sent]
    if not sent:
        for p in paid.payments:  # signed, never left: nobody holds the signature
            if paid.policy is not None:
                paid.policy.done(p.approval)
        return None
    total = 0
    for p in sent:
        what = f"{memo}: x402 {p.scheme} {p.status}" + (f" {p.tx_hash}" if p.tx_hash else "")
        budget.pay(hold, p.cost, key=p.key, memo=what, tx_hash=p.tx_hash)
        total += p.cost
        if paid.policy is not None:
            paid.policy.done(p.approval)
        paid.call.outstanding = None if p.status == SETTLED else p
    return total
