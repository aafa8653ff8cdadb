"""The console lists what the outbox published: the draft's title linking to the live post, its cost and earnings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agents.tasks import TaskStore
from kernel.db import make_engine
from daemon.console import posts_table
from daemon.status import StatusReader, outbox_posts
from ledger import Entry, Journal
from publishers.local import LocalPublisher
from publishers.outbox import Outbox
from publishers.protocol import Metrics, Post, Published
from tests.fakes.scripted_llm import sample_draft, sample_item


class WebPublisher:
    """A platform whose posts have a web address; `draft=True`: created unpublished (as Dev.to's drafts)."""

    name = "devto"

    def __init__(self, draft: bool = False):
        self.draft = draft

    async def publish(self, post: Post) -> Published:
        slug = post.key.removeprefix("selfpub-")
        return Published(self.name, f"id-{slug}", f"https://dev.example/selfpub/{slug}",
                         {"published": "false" if self.draft else "true"})

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        return None

    async def metrics(self, published: Sequence[Published]) -> list[Metrics]:
        return []


def _stores(db_url: str) -> tuple[Journal, Outbox, TaskStore]:
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    outbox = Outbox(engine)
    outbox.migrate()
    tasks = TaskStore(engine)
    tasks.migrate()
    return journal, outbox, tasks


def _task(tasks: TaskStore, n: int, title: str) -> str:
    t = tasks.create(cycle_id="c", items=[sample_item(n)])
    t.messages.drafts.append(sample_draft(title=title))
    return tasks.advance(t, t.status).id


async def test_recent_posts_come_from_the_outbox_with_cost_and_earnings(db_url: str, tmp_path: Path) -> None:
    journal, outbox, tasks = _stores(db_url)
    t1 = _task(tasks, 1, "A title")
    published = await outbox.deliver(
        LocalPublisher(tmp_path / "outbox"),
        Post(key="selfpub-t1", title="A title", body_markdown="Body", bsky_text="Short", task_id=t1),
    )
    journal.post("compute", [Entry("expenses:compute:writer", 700), Entry("liabilities:provider:x", -700)],
                 idempotency_key="c1", task_id=t1)
    post_id = f"local:{published.remote_id}"
    journal.post("engagement", [Entry("assets:receivable:engagement", 250), Entry("income:engagement:local", -250)],
                 idempotency_key="e1", task_id=t1, post_id=post_id)

    reader = StatusReader(journal, "default", posts_source=outbox_posts(journal, outbox))
    [row] = reader.recent_posts()
    assert (row.platform, row.cost, row.earnings, row.title) == ("local", 700, 250, "A title")
    assert row.url == ""  # a local file is not a live post
    assert reader.posts_by_platform() == {"local": 1}
    html = posts_table([row])
    assert "A title" in html and "local file" in html and "file:" not in html and str(tmp_path) not in html
    journal.engine.dispose()


async def test_post_titles_link_to_the_live_post(db_url: str) -> None:
    journal, outbox, tasks = _stores(db_url)
    live, draft = _task(tasks, 1, "Faster builds <in> Rust"), _task(tasks, 2, "A Dev.to draft")
    await outbox.deliver(WebPublisher(), Post(key="selfpub-a", title="x", body_markdown="B", bsky_text="S",
                                              task_id=live))
    await outbox.deliver(WebPublisher(draft=True), Post(key="selfpub-b", title="y", body_markdown="B", bsky_text="S",
                                                        task_id=draft))
    rows = {r.title: r for r in outbox_posts(journal, outbox)(10)}
    assert rows["Faster builds <in> Rust"].url == "https://dev.example/selfpub/a"
    assert rows["A Dev.to draft"].url == ""  # a reader cannot open a draft
    html = posts_table(list(rows.values()))
    assert '<a href="https://dev.example/selfpub/a" rel="noopener noreferrer">Faster builds &lt;in&gt; Rust</a>' in html
    assert "A Dev.to draft <small>(not online: no public URL)</small>" in html
    journal.engine.dispose()
