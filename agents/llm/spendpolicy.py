"""The spend policy: the one gate every x402 signature passes through. Default-deny.

    SpendPolicy.approve(offer, cap) -> Approval, or SpendRefused(reason); checked in this order:
        disabled      [x402.spend] enabled = false (the default)
        network       the offer's network is not the pinned one
        asset         the offer's asset is not the pinned one
        payee         the offer pays an address not in payees
        scheme        not one of the configured schemes (exact, upto)
        timeout       the authorisation would stay valid longer than max_timeout_seconds (so an
                      unused one is provably dead after it: wallet/x402spend.py voids it)
        reservation   the amount (exact: the price; upto: the authorised maximum) is over the call's
                      reservation (agents/llm/meter.py), in ucr rounded up
        daily_cap     paid today (the ledger) + approved and not yet booked (this process) + the
                      amount is over daily_cap
    SpendPolicy.done(approval)    the payment was booked (or never left): it stops counting as in flight

    signing_window()              where one payment is created (agents/llm/x402pay.py): an approval
                                  made inside it arms the signer, and is gone when it closes
    GuardedSigner(signer)         the signer every scheme gets: it signs typed data only under the
                                  approval of the payment being created (in the current window),
                                  once, for that payee and at most that amount. A scheme reached
                                  without the policy signs nothing.

Offers are in token units (integers); the policy converts them to ucr with the asset's decimals,
rounding up (against us), so the caps hold in the ledger's unit. Never a float.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agents.llm.errors import SpendRefused
from config.settings import X402SpendSettings

DISABLED, NETWORK, ASSET, PAYEE, SCHEME, TIMEOUT, RESERVATION, DAILY_CAP = (
    "disabled", "network", "asset", "payee", "scheme", "timeout", "reservation", "daily_cap",
)
OUTSTANDING = "outstanding"  # x402pay: the call's earlier payment may still settle; no second one for other terms
UCR_DECIMALS = 6

# The approval of the payment being created, inside signing_window() only: [approval or None].
_WINDOW: contextvars.ContextVar[list[Approval | None] | None] = contextvars.ContextVar("x402_window", default=None)


@contextmanager
def signing_window() -> Iterator[None]:
    """Where one payment is created: an approval made inside arms the GuardedSigner, and dies at exit."""
    token = _WINDOW.set([None])
    try:
        yield
    finally:
        _WINDOW.reset(token)


@dataclass(frozen=True)
class Offer:
    """One payment an endpoint asks for, as the policy sees it (addresses lowercase)."""

    scheme: str
    network: str
    asset: str
    pay_to: str
    units: int  # token units: exact's price, upto's authorised maximum
    timeout: int = 0  # seconds the signed authorisation stays valid

    @classmethod
    def of(cls, requirements: Any) -> Offer:
        """The offer of an SDK PaymentRequirements (anything with scheme, network, asset, pay_to, amount)."""
        return cls(
            str(requirements.scheme), str(requirements.network), str(requirements.asset).lower(),
            str(requirements.pay_to).lower(), int(requirements.amount),
            int(getattr(requirements, "max_timeout_seconds", 0) or 0),
        )


@dataclass(frozen=True)
class Approval:
    """A payment the policy let through: what may be signed, and what it counts for in ucr."""

    id: int
    offer: Offer
    ucr: int


def units_to_ucr_up(units: int, decimals: int) -> int:
    """Token units as ucr, rounded up (an amount we pay never looks smaller than it is)."""
    if decimals <= UCR_DECIMALS:
        return units * 10 ** (UCR_DECIMALS - decimals)
    return -(-units // 10 ** (decimals - UCR_DECIMALS))


class SpendPolicy:
    """Default-deny checks on every x402 payment; see the module docstring for the order."""

    def __init__(self, settings: X402SpendSettings, paid_today: Callable[[], int]):
        self.settings = settings
        self.paid_today = paid_today  # ucr paid over x402 since UTC midnight, read from the ledger
        self._in_flight: dict[int, int] = {}  # approval id -> ucr, approved and not yet booked
        self._ids = itertools.count(1)
        self._lock = threading.RLock()  # approve() holds it around check()

    def ucr(self, units: int) -> int:
        """Token units of the pinned asset as ucr, rounded up."""
        return units_to_ucr_up(units, self.settings.decimals)

    def check(self, offer: Offer, cap: int) -> int:
        """The offer's cost in ucr, or SpendRefused naming the first rule it breaks (reads only)."""
        s = self.settings
        if not s.enabled:
            raise _refused(DISABLED, "x402 payments are disabled; set [x402.spend] enabled = true")
        if s.network is None or offer.network != s.network:
            raise _refused(NETWORK, f"network {offer.network} is not the pinned [x402.spend] network "
                                    f"{s.network or '(none)'}")
        if s.asset is None or offer.asset != s.asset.lower():
            raise _refused(ASSET, f"asset {offer.asset} is not the pinned [x402.spend] asset {s.asset or '(none)'}")
        if offer.pay_to not in {p.lower() for p in s.payees}:
            raise _refused(PAYEE, f"payee {offer.pay_to} is not in [x402.spend] payees")
        if offer.scheme not in s.schemes:
            raise _refused(SCHEME, f"scheme {offer.scheme} is not one of [x402.spend] schemes {list(s.schemes)}")
        if offer.timeout > s.max_timeout_seconds:
            raise _refused(TIMEOUT, f"an authorisation valid {offer.timeout} s is longer than [x402.spend] "
                                    f"max_timeout_seconds {s.max_timeout_seconds}")
        cost = self.ucr(offer.units)
        if cost > cap:
            raise _refused(RESERVATION, f"{offer.scheme} payment of {cost} ucr is over the call's reservation "
                                        f"of {cap} ucr")
        with self._lock:
            flying = sum(self._in_flight.values())
        today = self.paid_today()
        if today + flying + cost > s.daily_cap:
            raise _refused(DAILY_CAP, f"payment of {cost} ucr would pass the x402 daily cap of {s.daily_cap} ucr "
                                      f"({today} paid today, {flying} in flight)")
        return cost

    def approve(self, offer: Offer, cap: int) -> Approval:
        """Check the offer and hold its amount as in flight until done(); arms the GuardedSigner."""
        with self._lock:  # one approval at a time, so two calls cannot both fit the last of the cap
            cost = self.check(offer, cap)
            approval = Approval(next(self._ids), offer, cost)
            self._in_flight[approval.id] = cost
        window = _WINDOW.get()
        if window is not None:
            window[0] = approval
        return approval

    def done(self, approval: Approval) -> None:
        """The approved payment is in the ledger now (or provably never left)."""
        with self._lock:
            self._in_flight.pop(approval.id, None)

    def in_flight(self) -> int:
        """ucr approved and not yet booked, in this process."""
        with self._lock:
            return sum(self._in_flight.values())


def _refused(reason: str, message: str) -> SpendRefused:
    return SpendRefused(f"x402 payment refused by the spend policy: {message}", reason=reason)


class GuardedSigner:
    """A ClientEvmSigner that signs only what the spend policy approved for the payment being created."""

    def __init__(self, signer: Any):
        self._signer = signer

    @property
    def address(self) -> str:
        """The payer's address."""
        return self._signer.address

    def sign_typed_data(self, domain: Any, types: Any, primary_type: str, message: dict[str, Any]) -> bytes:
        """Sign one EIP-3009 or Permit2 authorisation, if an approval covers its payee and amount."""
        window = _WINDOW.get()
        approval = window[0] if window is not None else None
        if window is not None:
            window[0] = None  # one signature per approval
        if approval is None:
            raise SpendRefused("x402 signature refused: no spend-policy approval for it", reason=DISABLED)
        to, amount = _terms(message)
        if to != approval.offer.pay_to or amount > approval.offer.units:
            raise SpendRefused(
                f"x402 signature refused: it pays {amount} units to {to}, the approval covers "
                f"{approval.offer.units} units to {approval.offer.pay_to}", reason=PAYEE if to != approval.offer.pay_to
                else RESERVATION)
        return self._signer.sign_typed_data(domain, types, primary_type, message)


def _terms(message: dict[str, Any]) -> tuple[str, int]:
    """(payee, amount) of an EIP-3009 TransferWithAuthorization or a Permit2 witness transfer."""
    try:
        if "permitted" in message:  # Permit2 (upto, or exact over Permit2): the witness names the payee
            return str(message["witness"]["to"]).lower(), int(message["permitted"]["amount"])
        return str(message["to"]).lower(), int(message["value"])
    except (KeyError, TypeError, ValueError):
        # Anything else (a gas-sponsoring permit, an approval): not a payment the policy approved.
        raise SpendRefused("x402 signature refused: not a payment authorisation", reason=PAYEE) from None
