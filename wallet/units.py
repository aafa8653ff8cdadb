"""Token units <-> integer micro-credits: the only place the two meet.

Rounding is always to the agent's disadvantage:
- incoming amounts (tips, balances) round DOWN; the sub-micro-credit
  remainder, in token units, is kept in the `wallet_dust` table (it is too
  small to post: the ledger's unit is 1 ucr);
- outgoing payments round UP to whole token units; when the token has fewer
  than 6 decimals the extra whole micro-credits paid are posted to
  `expenses:dust`.
"""

from __future__ import annotations

from dataclasses import dataclass

UCR_DECIMALS = 6


@dataclass(frozen=True)
class Incoming:
    """An incoming token amount as whole micro-credits plus the token units left over."""

    ucr: int
    dust_units: int


@dataclass(frozen=True)
class Outgoing:
    """What to send for a micro-credit amount: token units, and the ucr they really cost."""

    units: int
    ucr: int  # >= the asked amount; the difference is expenses:dust


def _check(value: int, what: str) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")


def units_to_ucr(units: int, decimals: int) -> Incoming:
    """Convert incoming token units to micro-credits, rounding down and keeping the remainder."""
    _check(units, "token units")
    _check(decimals, "decimals")
    if decimals >= UCR_DECIMALS:
        ucr, dust = divmod(units, 10 ** (decimals - UCR_DECIMALS))
        return Incoming(ucr, dust)
    return Incoming(units * 10 ** (UCR_DECIMALS - decimals), 0)


def ucr_to_units(ucr: int, decimals: int) -> Outgoing:
    """Token units to send for `ucr`, rounding up; .ucr is what those units are worth."""
    _check(ucr, "micro-credits")
    _check(decimals, "decimals")
    if decimals >= UCR_DECIMALS:
        return Outgoing(ucr * 10 ** (decimals - UCR_DECIMALS), ucr)
    step = 10 ** (UCR_DECIMALS - decimals)
    units = -(-ucr // step)
    return Outgoing(units, units * step)
