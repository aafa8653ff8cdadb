"""The local folder publisher and the dispatcher: order, links, one failure does not stop the others."""

from __future__ import annotations

import frontmatter
import pytest

from kernel.db import make_engine
from publishers.dispatch import DispatchPermanentError, DispatchRetryableError, Dispatcher
from publishers.local import LocalPublisher
from publishers.outbox import Outbox
from publishers.protocol import Post
from tests.publishers.fakes import ScriptedPublisher

POST = Post(key="task-3:post", title="Hello: world", body_markdown="Body 日本語", bsky_text="short", tags=("a", "b"),
            description="d", canonical_url="https://example.test/orig", task_id="task-3")


async def _no_sleep(_s: float) -> None:
    return None


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    box = Outbox(make_engine(f"sqlite:///{tmp_path / 'o.db'}"), sleep=_no_sleep)
    box.migrate()
    return box


async def test_local_writes_markdown_with_front_matter_once_per_key(tmp_path):
    local = LocalPublisher(tmp_path / "outbox")
    first = await local.publish(POST)
    second = await local.publish(Post(key=POST.key, title="Changed", body_markdown="x", bsky_text="y"))
    assert first == second
    files = list((tmp_path / "outbox").iterdir())
    assert len(files) == 1
    doc = frontmatter.load(files[0])
    assert doc["title"] == "Hello: world" and doc["tags"] == ["a", "b"] and doc["key"] == POST.key
    assert doc.content == "Body 日本語"
    assert await local.find_existing(POST.key, POST) == first
    assert await local.find_existing("other", POST) is None


async def test_dispatch_order_devto_first_and_bluesky_links_to_the_article(outbox, tmp_path):
    devto, bsky = ScriptedPublisher("devto"), ScriptedPublisher("bluesky")
    channel = Dispatcher(outbox, devto=devto, bluesky=bsky, local=LocalPublisher(tmp_path / "out"))
    published = await channel.publish_all(POST)
    assert [p.platform for p in published] == ["devto", "local", "bluesky"]
    assert bsky.publish_calls[0].link_url == published[0].url
    assert await channel.publish_all(POST) == published  # exactly once
    assert len(devto.publish_calls) == len(bsky.publish_calls) == 1


async def test_without_devto_bluesky_links_to_the_canonical_url(outbox):
    bsky = ScriptedPublisher("bluesky")
    await Dispatcher(outbox, bluesky=bsky).publish_all(POST)
    assert bsky.publish_calls[0].link_url == "https://example.test/orig"


async def test_one_platform_failing_does_not_stop_the_others(outbox, tmp_path):
    devto, bsky = ScriptedPublisher("devto", ["perm"]), ScriptedPublisher("bluesky")
    channel = Dispatcher(outbox, devto=devto, bluesky=bsky, local=LocalPublisher(tmp_path / "out"))
    with pytest.raises(DispatchPermanentError) as info:
        await channel.publish_all(POST)
    assert [p.platform for p in info.value.published] == ["local", "bluesky"]
    (err,) = info.value.errors
    assert err.platform == "devto" and err.status == 422 and err.message == "invalid"
    assert bsky.publish_calls[0].link_url == POST.canonical_url  # Dev.to refused: fall back


async def test_bluesky_waits_while_devto_is_retryable_then_links_to_it(outbox):
    devto, bsky = ScriptedPublisher("devto", ["retry", "retry", "retry"]), ScriptedPublisher("bluesky")
    channel = Dispatcher(outbox, devto=devto, bluesky=bsky)
    with pytest.raises(DispatchRetryableError) as info:
        await channel.publish_all(POST)
    assert {e.platform for e in info.value.errors} == {"devto", "bluesky"} and bsky.publish_calls == []
    published = await channel.publish_all(POST)
    assert bsky.publish_calls[0].link_url == published[0].url
    assert len(devto.remote) == 1


async def test_metrics_cover_everything_published(outbox):
    devto, bsky = ScriptedPublisher("devto"), ScriptedPublisher("bluesky")
    channel = Dispatcher(outbox, devto=devto, bluesky=bsky)
    await channel.publish_all(POST)
    await channel.publish_all(Post(key="k2", title="t", body_markdown="b", bsky_text="s"))
    metrics = await channel.metrics()
    assert sorted((m.platform, m.likes) for m in metrics) == [("bluesky", 7)] * 2 + [("devto", 7)] * 2
