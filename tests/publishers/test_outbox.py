"""The outbox: a row committed before the remote call, exactly-once delivery, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from publishers.models import DONE, FAILED, SENT
from publishers.outbox import Outbox, OutboxBusy
from publishers.protocol import PermanentError, Post, Published, RetryableError
from tests.publishers.fakes import ScriptedPublisher

POST = Post(key="task-1:post", title="T", body_markdown="B", bsky_text="S", task_id="task-1")


async def _no_sleep(_s: float) -> None:
    return None


@pytest.fixture
def outbox(engine) -> Outbox:
    box = Outbox(engine, sleep=_no_sleep)
    box.migrate()
    return box


def test_migrate_creates_own_tables_and_version_table(engine, outbox):
    outbox.migrate()  # twice is fine
    tables = set(inspect(engine).get_table_names())
    assert {"publishers_outbox", "alembic_version_publishers"} <= tables


async def test_deliver_publishes_once_and_returns_the_stored_result_after(outbox):
    pub = ScriptedPublisher("devto")
    first = await outbox.deliver(pub, POST)
    again = await outbox.deliver(pub, POST)
    assert first == again
    assert len(pub.publish_calls) == 1
    rec = outbox.get(POST.key, "devto")
    assert rec.status == DONE and rec.attempts == 1 and rec.task_id == "task-1"


async def test_row_is_committed_before_the_remote_call(outbox, engine):
    seen = {}

    class Peeking(ScriptedPublisher):
        async def publish(self, post):
            seen["row"] = Outbox(engine).get(post.key, self.name)
            return await super().publish(post)

    await outbox.deliver(Peeking("devto"), POST)
    assert seen["row"] is not None and seen["row"].status == SENT


async def test_lost_response_is_resolved_by_lookup_not_by_posting_again(outbox):
    pub = ScriptedPublisher("bluesky", ["lost"])
    published = await outbox.deliver(pub, POST)
    assert len(pub.remote) == 1 and len(pub.publish_calls) == 1
    assert pub.lookups == 1
    assert published == pub.remote[POST.key]


async def test_ambiguous_row_left_by_a_crash_is_looked_up_by_the_next_process(outbox, engine):
    pub = ScriptedPublisher("devto", ["lost"])
    with pytest.raises(RetryableError):
        await outbox.deliver(pub, POST, attempts=1)
    assert outbox.get(POST.key, "devto").status == SENT
    restarted = Outbox(engine, sleep=_no_sleep)
    await restarted.deliver(pub, POST)
    assert len(pub.remote) == 1 and len(pub.publish_calls) == 1


async def test_retryable_errors_are_retried_then_succeed(outbox):
    pub = ScriptedPublisher("devto", ["retry", "retry", "ok"])
    await outbox.deliver(pub, POST, attempts=3)
    assert len(pub.publish_calls) == 3 and len(pub.remote) == 1
    assert outbox.get(POST.key, "devto").attempts == 3


async def test_retry_after_longer_than_a_minute_is_left_to_the_scheduler(outbox):
    class Throttled(ScriptedPublisher):
        async def publish(self, post):
            self.publish_calls.append(post)
            raise RetryableError(self.name, "slow down", status=429, retry_after=600)

    pub = Throttled("devto")
    with pytest.raises(RetryableError) as info:
        await outbox.deliver(pub, POST, attempts=3)
    assert info.value.retry_after == 600 and len(pub.publish_calls) == 1


async def test_permanent_error_marks_the_row_failed_with_the_platform_message(outbox):
    pub = ScriptedPublisher("devto", ["perm"])
    with pytest.raises(PermanentError):
        await outbox.deliver(pub, POST)
    rec = outbox.get(POST.key, "devto")
    assert rec.status == FAILED and "invalid" in rec.last_error and rec.published is None
    await outbox.deliver(pub, POST)  # a failed row may be tried again: nothing was created
    assert outbox.get(POST.key, "devto").status == DONE


class Clock:
    """A settable UTC clock shared by several Outbox instances (several processes)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def _process(engine, clock: Clock, owner: str, *, dead: set[str] = frozenset(), **kw) -> Outbox:
    return Outbox(engine, sleep=_no_sleep, clock=clock, owner=owner, is_dead=lambda o: o in dead, lease_seconds=60,
                  busy_wait=0, **kw)


async def test_a_live_claim_is_never_taken_and_its_holder_is_waited_for(outbox, engine):
    clock = Clock()
    a, b = _process(engine, clock, "host/b/ns/1/1"), _process(engine, clock, "host/b/ns/2/1")
    held = a.claim(a._ensure_row(POST, "devto"))
    assert held is not None and a.mark_sent(held)
    clock.now += timedelta(seconds=59)
    assert b.claim(b._ensure_row(POST, "devto")) is None  # a is sending: not a crash leftover
    pub = ScriptedPublisher("devto")
    with pytest.raises(OutboxBusy) as info:
        await b.deliver(pub, POST)
    assert pub.publish_calls == [] and pub.lookups == 0
    assert "pid 1 on host" in info.value.message and info.value.retry_after == pytest.approx(1.0)


async def test_an_expired_lease_is_taken_over_through_the_lookup_and_fences_the_old_holder(outbox, engine):
    clock = Clock()
    a, b = _process(engine, clock, "host/b/ns/1/1"), _process(engine, clock, "host/b/ns/2/1")
    pub = ScriptedPublisher("devto")
    stale = a.claim(a._ensure_row(POST, "devto"))
    assert a.mark_sent(stale)
    await pub.publish(POST)  # a's request reached the platform; then a stalled past its lease
    clock.now += timedelta(seconds=61)
    published = await b.deliver(pub, POST)
    assert len(pub.remote) == 1 and len(pub.publish_calls) == 1 and pub.lookups == 1
    assert published == pub.remote[POST.key]
    # a wakes up: every write it tries is fenced out, and the row stays as b left it
    assert not a.renew(stale) and not a.complete(stale, Published("devto", "other", "")) and not a.release(stale)
    assert outbox.get(POST.key, "devto").published == published


async def test_a_dead_holder_on_this_host_is_taken_over_at_once(outbox, engine):
    clock = Clock()
    dead = {"host/b/ns/1/1"}
    a, b = _process(engine, clock, "host/b/ns/1/1"), _process(engine, clock, "host/b/ns/2/1", dead=dead)
    pub = ScriptedPublisher("devto", ["lost"])
    held = a.claim(a._ensure_row(POST, "devto"))
    assert a.mark_sent(held)
    with pytest.raises(RetryableError):
        await pub.publish(POST)  # created remotely; then a was SIGKILLed
    published = await b.deliver(pub, POST)  # well inside a's lease
    assert published == pub.remote[POST.key] and pub.lookups == 1 and len(pub.publish_calls) == 1


async def test_the_lease_is_renewed_while_the_remote_call_is_in_flight(outbox, engine):
    clock = Clock()
    ticks: list[float] = []
    release = asyncio.Event()

    async def tick(seconds: float) -> None:
        ticks.append(seconds)
        clock.now += timedelta(seconds=seconds)
        if len(ticks) >= 6:
            release.set()
        await asyncio.sleep(0)

    class Slow(ScriptedPublisher):
        async def publish(self, post):
            await release.wait()  # a send that takes 1.5 leases
            return await super().publish(post)

    a = _process(engine, clock, "host/b/ns/1/1", renew_sleep=tick)
    b = _process(engine, clock, "host/b/ns/2/1")
    pub = Slow("devto")
    sending = asyncio.create_task(a.deliver(pub, POST))
    while len(ticks) < 5:
        await asyncio.sleep(0)
    assert b.claim(b._ensure_row(POST, "devto")) is None  # 75 s into a 60 s lease: still a's
    await sending
    assert ticks == [15.0] * len(ticks) and len(pub.remote) == 1
    assert outbox.get(POST.key, "devto").status == DONE


async def test_published_lists_done_posts_with_task_ids(outbox):
    await outbox.deliver(ScriptedPublisher("devto"), POST)
    await outbox.deliver(ScriptedPublisher("bluesky"), POST)
    with pytest.raises(PermanentError):
        await outbox.deliver(ScriptedPublisher("local", ["perm"]), POST)
    assert [r.platform for r in outbox.published()] == ["devto", "bluesky"]
    (rec,) = outbox.published("bluesky")
    assert rec.task_id == "task-1" and rec.key == POST.key and rec.published.platform == "bluesky"
