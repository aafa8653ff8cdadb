"""The outbox: a row committed before the remote call, exactly-once delivery, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from publishers.models import DONE, FAILED, SENT
from publishers.outbox import Outbox
from publishers.protocol import PermanentError, Post, RetryableError
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


async def test_a_row_claimed_by_another_worker_is_not_sent_twice(outbox, engine):
    pub = ScriptedPublisher("devto")
    row = outbox._ensure_row(POST, "devto")
    outbox._claim(row)  # another worker is sending
    stale = Outbox(engine, sleep=_no_sleep)
    stale_row = row.model_copy(update={"status": "pending", "attempts": 0})
    with pytest.raises(RetryableError):
        stale._claim(stale_row)
    assert pub.publish_calls == []


async def test_published_lists_done_posts_with_task_ids(outbox):
    await outbox.deliver(ScriptedPublisher("devto"), POST)
    await outbox.deliver(ScriptedPublisher("bluesky"), POST)
    with pytest.raises(PermanentError):
        await outbox.deliver(ScriptedPublisher("local", ["perm"]), POST)
    assert [r.platform for r in outbox.published()] == ["devto", "bluesky"]
    (rec,) = outbox.published("bluesky")
    assert rec.task_id == "task-1" and rec.key == POST.key and rec.published.platform == "bluesky"
