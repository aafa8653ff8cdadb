"""Credits <-> integer micro-credits. Money never touches a float.

1 credit = 1,000,000 ucr. Text and TOML amounts are parsed with Decimal and
must have at most 6 decimal places. The settings field type that also
refuses negative amounts (`config.settings.Credits`) is built on parse_credits.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

UCR_PER_CREDIT = 1_000_000
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


class AmountError(ValueError):
    """An amount that is not a valid credit amount (float, too precise, not a number)."""

    retryable: bool | None = None  # the daemon's job policy: stop (a bad amount is a bug or a config fault)


def parse_credits(value: object) -> int:
    """Return micro-credits for a credit amount given as str, int or Decimal ("1.25" -> 1250000)."""
    if isinstance(value, bool):
        raise AmountError(f"{value!r} is not an amount; write credits like \"1.25\"")
    if isinstance(value, float):
        raise AmountError(
            f"{value!r} is a float; write the amount as a string or integer, e.g. \"1.25\""
        )
    if isinstance(value, int):
        return value * UCR_PER_CREDIT
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            parsed = Decimal(text)
        except InvalidOperation:
            raise AmountError(f"{value!r} is not a number; write credits like \"1.25\"") from None
        if parsed.is_finite() and not _PLAIN_DECIMAL.fullmatch(text):
            # "1e3" is 1000 to Decimal, but not how anyone writes money: refuse rather than guess.
            raise AmountError(f"{value!r} is in exponent notation; write credits as a plain number like \"1.25\"")
        value = parsed
    if not isinstance(value, Decimal):
        raise AmountError(f"{value!r} is not an amount; write credits like \"1.25\"")
    if not value.is_finite():
        raise AmountError(f"{value} is not a finite amount")
    micro = value * UCR_PER_CREDIT
    if micro != micro.to_integral_value():
        raise AmountError(f"{value} has more than 6 decimal places (1 ucr = 0.000001 credit)")
    return int(micro)


def format_credits(ucr: int) -> str:
    """Render micro-credits as a credit string with 6 decimals ("1.250000")."""
    sign = "-" if ucr < 0 else ""
    whole, frac = divmod(abs(int(ucr)), UCR_PER_CREDIT)
    return f"{sign}{whole}.{frac:06d}"
