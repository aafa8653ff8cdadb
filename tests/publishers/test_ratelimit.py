"""Token buckets with the platforms' limits; Retry-After honoured."""

from __future__ import annotations

import pytest

from publishers.protocol import RetryableError
from publishers.ratelimit import Limiter, TokenBucket, bluesky_limiters, devto_limiters


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_devto_writes_are_spaced_one_per_second():
    t = FakeTime()
    writes, _ = devto_limiters(clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        await writes.acquire()
    assert t.slept == [pytest.approx(1.0), pytest.approx(1.0)]


async def test_devto_published_articles_nine_per_thirty_seconds():
    t = FakeTime()
    _, articles = devto_limiters(clock=t.clock, sleep=t.sleep)
    for _ in range(9):
        await articles.acquire()
    assert t.slept == []
    await articles.acquire()
    assert t.slept == [pytest.approx(30 / 9)]


async def test_new_devto_account_waits_five_minutes_and_says_when():
    t = FakeTime()
    _, articles = devto_limiters(new_account=True, clock=t.clock, sleep=t.sleep)
    await articles.acquire()
    with pytest.raises(RetryableError) as info:
        await articles.acquire()
    assert info.value.retry_after == pytest.approx(300)
    assert t.slept == []


async def test_bluesky_write_points_cap_creates_per_hour():
    t = FakeTime()
    points, _ = bluesky_limiters(clock=t.clock, sleep=t.sleep)
    points.max_wait = 0
    for _ in range(5000 // 3):
        await points.acquire(3)
    with pytest.raises(RetryableError) as info:
        await points.acquire(3)
    assert info.value.retry_after == pytest.approx(1 / (5000 / 3600))
    t.now += 3600
    for _ in range(5000 // 3):
        await points.acquire(3)  # the hourly bucket refilled; the daily one still has room


async def test_bluesky_create_session_is_limited_to_thirty_per_five_minutes():
    t = FakeTime()
    _, sessions = bluesky_limiters(clock=t.clock, sleep=t.sleep)
    for _ in range(30):
        await sessions.acquire()
    assert t.slept == []
    await sessions.acquire()
    assert t.slept == [pytest.approx(10)]  # 30 per 300 s refills one every 10 s


async def test_retry_after_blocks_the_next_acquire():
    t = FakeTime()
    limiter = Limiter("x", [TokenBucket("b", 10, 10.0, t.clock)], t.sleep)
    limiter.block_for(5)
    await limiter.acquire()
    assert t.slept == [pytest.approx(5)]

