"""One name per post: the status page, `ledger report` and the earnings job all key a post by
daemon/posts.py's post_key over the outbox, so the engagement a post earns shows against it everywhere."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from agents.tasks import TaskStore
from config.settings import BudgetSettings, EngagementRates
from daemon.engagement import pull_engagement
from daemon.posts import post_key, posts_of
from daemon.status import StatusReader
from daemon.wiring import _outbox_posts, _outbox_posts_of
from kernel.db import make_engine
from ledger import Entry, Journal, compute_account, provider_account
from ledger.budget import Budget
from ledger.reports import build_report
from publishers.local import LocalPublisher
from publishers.outbox import Outbox
from publishers.protocol import Metrics, Post
from tests.fakes.scripted_llm import sample_draft, sample_item
from wallet.wallets import migrate as migrate_wallet

NOON = datetime(2026, 11, 21, 12, 5, tzinfo=timezone.utc)


class Platform:
    """The dispatcher's metrics: what the local platform reports for the one post it holds."""

    def __init__(self, remote_id: str):
        self.remote_id = remote_id

    async def metrics(self) -> list[Metrics]:
        return [Metrics("local", self.remote_id, views=40)]


async def test_the_page_the_report_and_engagement_name_a_post_the_same_way(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    migrate_wallet(engine)
    tasks, outbox = TaskStore(engine), Outbox(engine)
    tasks.migrate()
    outbox.migrate()
    task = tasks.create(cycle_id="c", items=[sample_item(1)])
    task.messages.drafts.append(sample_draft(title="Keyed"))
    task_id = tasks.advance(task, task.status).id
    journal.post("compute", [Entry(compute_account("writer"), 300_000), Entry(provider_account("x"), -300_000)],
                 idempotency_key="c1", task_id=task_id)
    published = await outbox.deliver(LocalPublisher(tmp_path / "outbox"), Post(
        key=f"selfpub-{task_id}", title="Keyed", body_markdown="Body", bsky_text="Short", task_id=task_id))
    key = post_key("local", published.remote_id)

    booked = await pull_engagement(Platform(published.remote_id), outbox, journal,
                                   {"local": EngagementRates(view="0.001")}, NOON)
    assert booked == 40_000
    with engine.connect() as conn:  # the earnings job books the income under the post's key, with its task
        rows = conn.exec_driver_sql("SELECT post_id, task_id FROM ledger_txn WHERE kind = 'engagement'").all()
    assert [tuple(r) for r in rows] == [(key, task_id)]

    # The status page, wired as the daemon wires it.
    reader = StatusReader(journal, "default", posts_source=_outbox_posts(journal),
                          posts_of_source=_outbox_posts_of(journal))
    assert reader.posts_of() == posts_of(outbox) == {task_id: [key]}
    [row] = reader.recent_posts()
    assert (post_key(row.platform, row.post_id), row.cost, row.earnings) == (key, 300_000, booked)

    # `ledger report`, handed the same map (daemon/commands/ledger_cmd.py).
    report = build_report(journal, Budget(journal, BudgetSettings()), posts_of=posts_of(outbox))
    [pnl] = [p for p in report.posts if p.task_id == task_id]
    assert (pnl.post_id, pnl.cost, pnl.earnings) == (key, 300_000, booked)
    assert report.per_article.articles == 1
    engine.dispose()
