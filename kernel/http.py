"""Retry-After, read one way for every client (feeds, LLM endpoints, the chain node, the platforms).

    "120"                             -> 120.0   delta-seconds (a decimal fraction is tolerated)
    "Wed, 21 Oct 2015 07:28:00 GMT"   -> seconds from now to then; 0.0 when it has passed
    absent, empty, "soon", "inf"      -> None    (the caller falls back to its own backoff)

Every answer is within [0, cap]: a server asking for a day is not obeyed for a
year, and no value raises. Callers that hold off for less (the LLM router, the
chain provider) apply their own, smaller cap on top.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SECONDS = 86_400.0  # one day: longer asks are read as "a day"
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after_seconds(value: str | None, *, now: float | None = None,
                        cap: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """Seconds a Retry-After value asks to wait (delta-seconds or an HTTP date), in [0, cap]; None if unreadable."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no source zone (RFC 5322)
        when = when.replace(tzinfo=timezone.utc)
    current = time.time() if now is None else now
    try:
        seconds = when.timestamp() - current
    except (OverflowError, ValueError, OSError):
        return None
    return min(max(seconds, 0.0), cap)


def retry_after_from(headers: Mapping[str, str] | None, *, now: float | None = None,
                     cap: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """Seconds from a response's headers: retry-after-ms (OpenAI-style) first, then Retry-After; None if neither."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if isinstance(ms, str) and _DELTA_SECONDS.fullmatch(ms.strip()):
        return min(float(ms.strip()) / 1000, cap)
    return retry_after_seconds(headers.get("retry-after"), now=now, cap=cap)
