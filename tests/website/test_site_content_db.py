"""The site's read model and the slug store on SQLite and on the real PostgreSQL (the `engine` fixture runs both)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from agents.messages import Brief, Draft, FeedItem
from agents.tasks import APPROVED, DRAFTED, HELD, PUBLISHED, RESEARCHED, TaskStore, post_key
from daemon.site import backfill_slugs
from daemon.state import migrations
from publishers.local import LocalPublisher
from publishers.outbox import Outbox
from publishers.protocol import Post
from publishers.slugs import SlugStore
from website import PublishedContent


def _task(tasks: TaskStore, n: int, title: str):  # noqa: ANN202
    item = FeedItem(feed_url="https://f.example/rss", url=f"https://f.example/{n}", title="i", content_hash=f"h{n}")
    task = tasks.create(cycle_id="c", items=[item], claimed_by="w")
    task.messages.brief = Brief(topic="t", angle="a", sources=(item.url,))
    task = tasks.advance(task, RESEARCHED)
    task.messages.drafts.append(Draft(title=title, body_markdown="Body", bsky_text="b"))
    return tasks.advance(task, DRAFTED)


async def test_only_delivered_approved_work_is_listed_and_old_posts_get_a_slug_once(engine, tmp_path):
    migrations().upgrade(engine)
    tasks, outbox, slugs = TaskStore(engine, persona="p1"), Outbox(engine), SlugStore(engine)
    local = LocalPublisher(tmp_path / "out")
    shown = tasks.advance(_task(tasks, 1, "Shown"), APPROVED, release=True)
    # delivered before slugs existed (no slug row): the site's start-up backfill gives it one
    await outbox.deliver(local, Post(key=post_key(shown.id), title="Shown", body_markdown="Body", bsky_text="b",
                                     task_id=shown.id))
    tasks.advance(shown, PUBLISHED)
    held = tasks.advance(_task(tasks, 2, "Held"), HELD, release=True)
    slugs.assign(post_key(held.id), "Held", held.id)
    other = TaskStore(engine, persona="p2")  # another persona's published post is not this site's
    theirs = other.advance(_task(other, 3, "Theirs"), APPROVED, release=True)
    await outbox.deliver(local, Post(key=post_key(theirs.id), title="Theirs", body_markdown="B", bsky_text="b",
                                     task_id=theirs.id))
    other.advance(theirs, PUBLISHED)

    content = PublishedContent(engine, "p1", cache_seconds=0)
    assert content.listing() == []
    assert backfill_slugs(engine, "p1") == 1 and backfill_slugs(engine, "p1") == 0
    (listed,) = content.listing()
    assert listed.slug == slugs.slug_of(post_key(shown.id)) and listed.slug.startswith("shown-")
    article = content.article(listed.slug)
    assert article is not None and article.title == "Shown" and article.sources == ("https://f.example/1",)
    assert content.article(slugs.slug_of(post_key(held.id))) is None


def test_workers_assigning_one_post_at_once_agree_on_its_slug(engine):
    migrations().upgrade(engine)
    stores = [SlugStore(engine) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        got = set(pool.map(lambda s: s.assign("selfpub-race", "Race", "race"), stores))
    assert len(got) == 1
