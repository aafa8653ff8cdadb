"""The status page lists what the outbox published, with each post's compute cost and earnings."""

from __future__ import annotations

from pathlib import Path

from kernel.db import make_engine
from daemon.status import StatusReader, outbox_posts
from ledger import Entry, Journal
from publishers.local import LocalPublisher
from publishers.outbox import Outbox
from publishers.protocol import Post


async def test_recent_posts_come_from_the_outbox_with_cost_and_earnings(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    outbox = Outbox(engine)
    outbox.migrate()
    published = await outbox.deliver(
        LocalPublisher(tmp_path / "outbox"),
        Post(key="selfpub-t1", title="A title", body_markdown="Body", bsky_text="Short", task_id="t1"),
    )
    journal.post("compute", [Entry("expenses:compute:writer", 700), Entry("liabilities:provider:x", -700)],
                 idempotency_key="c1", task_id="t1")
    post_id = f"local:{published.remote_id}"
    journal.post("engagement", [Entry("assets:receivable:engagement", 250), Entry("income:engagement:local", -250)],
                 idempotency_key="e1", task_id="t1", post_id=post_id)

    reader = StatusReader(journal, "default", posts_source=outbox_posts(journal, outbox))
    [row] = reader.recent_posts()
    assert (row.platform, row.cost, row.earnings) == ("local", 700, 250)
    assert reader.posts_by_platform() == {"local": 1}
    engine.dispose()
