"""A circuit breaker per endpoint: closed -> open after N consecutive failures -> half-open after a cooldown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Breaker:
    """Consecutive-failure counter of one endpoint; `allow(now)` says whether to send to it."""

    threshold: int = 3
    cooldown: timedelta = timedelta(seconds=60)
    failures: int = 0
    opened_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    def allow(self, now: datetime) -> bool:
        """Closed, or open long enough that one trial request may go (half-open)."""
        return self.opened_at is None or now - self.opened_at >= self.cooldown

    def success(self) -> None:
        """The endpoint answered: close the circuit."""
        self.failures = 0
        self.opened_at = None

    def failure(self, now: datetime) -> None:
        """A transient failure; opens (or re-opens, when half-open) at the threshold."""
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = now

    def state(self, now: datetime) -> str:
        """closed | open | half-open, for status reports."""
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.allow(now) else "open"
