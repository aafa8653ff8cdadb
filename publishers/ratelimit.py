"""Token buckets holding each platform's documented limits, and Retry-After.

A bucket refills continuously at `capacity / period`. `acquire` waits (with
an injected sleep) when the wait is short, and raises RetryableError with
`retry_after` when it is longer than `max_wait`: a scheduled job is better
retried later than parked for an hour. `block_for` records a server's
Retry-After so the next acquire waits at least that long.

Limits used by the adapters (per account / key):

    Dev.to   writes              1 per second
             published articles  9 per 30 s (new accounts: 1 per 5 min)
    Bluesky  write points        5,000 per hour, 35,000 per day (create = 3)
             createSession       30 per 5 min, 300 per day
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from publishers.protocol import RetryableError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_MAX_WAIT = 30.0  # seconds an adapter may wait in-line for a token


@dataclass
class TokenBucket:
    """`capacity` tokens refilled evenly over `period` seconds."""

    name: str
    capacity: float
    period: float
    clock: Clock = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)
    blocked_until: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.updated = self.clock()

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.capacity / self.period

    def _refill(self) -> float:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return now

    def wait_time(self, cost: float = 1) -> float:
        """Seconds until `cost` tokens are available (0 when they are now)."""
        if cost > self.capacity:
            raise ValueError(f"{self.name}: cost {cost} exceeds capacity {self.capacity}")
        now = self._refill()
        blocked = max(0.0, self.blocked_until - now)
        missing = max(0.0, cost - self.tokens)
        return max(blocked, missing / self.rate)

    def take(self, cost: float = 1) -> None:
        """Spend tokens now (callers check wait_time first)."""
        self._refill()
        self.tokens -= cost

    def block_for(self, seconds: float) -> None:
        """Honour a server's Retry-After: nothing is taken before it has passed."""
        self.blocked_until = max(self.blocked_until, self.clock() + max(0.0, seconds))


@dataclass
class Limiter:
    """Several buckets acquired together (e.g. hourly and daily write points)."""

    platform: str
    buckets: Sequence[TokenBucket]
    sleep: Sleep = asyncio.sleep
    max_wait: float = DEFAULT_MAX_WAIT

    async def acquire(self, cost: float = 1) -> None:
        """Take `cost` from every bucket, waiting up to max_wait; else RetryableError(retry_after)."""
        while True:
            wait = max((b.wait_time(cost) for b in self.buckets), default=0.0)
            if wait <= 0:
                for b in self.buckets:
                    b.take(cost)
                return
            if wait > self.max_wait:
                names = ", ".join(b.name for b in self.buckets if b.wait_time(cost) > 0)
                raise RetryableError(self.platform, f"local rate limit ({names})", status=429, retry_after=wait)
            await self.sleep(wait)

    def block_for(self, seconds: float) -> None:
        """Apply a Retry-After to every bucket of this limiter."""
        for b in self.buckets:
            b.block_for(seconds)


def devto_limiters(*, new_account: bool = False, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> tuple[Limiter, Limiter]:
    """(writes, published articles) limiters with Forem's limits."""
    writes = Limiter("devto", [TokenBucket("devto writes 1/s", 1, 1.0, clock)], sleep)
    if new_account:
        articles = TokenBucket("devto new-account articles 1/5min", 1, 300.0, clock)
    else:
        articles = TokenBucket("devto articles 9/30s", 9, 30.0, clock)
    return writes, Limiter("devto", [articles], sleep)


BLUESKY_CREATE_POINTS = 3


def bluesky_limiters(*, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> tuple[Limiter, Limiter]:
    """(write points, createSession) limiters with Bluesky's documented limits."""
    points = Limiter(
        "bluesky",
        [
            TokenBucket("bluesky write points 5000/h", 5_000, 3_600.0, clock),
            TokenBucket("bluesky write points 35000/day", 35_000, 86_400.0, clock),
        ],
        sleep,
    )
    sessions = Limiter(
        "bluesky",
        [
            TokenBucket("bluesky createSession 30/5min", 30, 300.0, clock),
            TokenBucket("bluesky createSession 300/day", 300, 86_400.0, clock),
        ],
        sleep,
    )
    return points, sessions
