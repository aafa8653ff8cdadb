"""Issue 15 part 2 on the status page: cost per published article (mean, p90) next to income per article.

The console reads ledger.reads.unit_economics, the read `selfpub ledger report` uses, with the
outbox's posts, so an article the outbox delivered counts before it earns; a draft never published
does not. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from agents.tasks import TaskStore
from daemon.console import gather
from daemon.http import status_page
from kernel.money import format_credits
from ledger import Entry, RECEIVABLE_ENGAGEMENT, compute_account, engagement_account, provider_account
from ledger import reads
from publishers.local import LocalPublisher
from publishers.outbox import Outbox
from publishers.protocol import Post
from daemon.posts import posts_of
from tests.daemon.test_service import Recorder, make_service


async def test_the_status_page_shows_cost_and_income_per_article(db_url: str, tmp_path: Path) -> None:
    svc = make_service(db_url, tmp_path, Recorder([]))
    journal = svc.journal
    TaskStore(svc.engine).migrate()
    outbox = Outbox(svc.engine)
    outbox.migrate()
    svc.reader.posts_of_source = lambda: posts_of(outbox)  # as daemon/wiring.py wires it

    def spend(key: str, task: str, amount: int) -> None:
        journal.post("compute", [Entry(compute_account("writer"), amount), Entry(provider_account("x"), -amount)],
                     idempotency_key=key, task_id=task)

    spend("c1", "t1", 300_000)  # published by the outbox, has not earned yet
    await outbox.deliver(LocalPublisher(tmp_path / "outbox"),
                         Post(key="selfpub-t1", title="One", body_markdown="Body", bsky_text="Short", task_id="t1"))
    spend("c2", "t2", 900_000)  # a draft that was never published
    spend("c3", "t3", 500_000)  # earned: its income carries the post id
    journal.post("engagement", [Entry(RECEIVABLE_ENGAGEMENT, 100_000), Entry(engagement_account("devto"), -100_000)],
                 idempotency_key="e3", task_id="t3", post_id="devto:3")

    assert set(svc.reader.posts_of()) == {"t1"}
    data = gather(svc)
    assert data.per_article == reads.UnitEconomics(articles=2, cost_mean=400_000, cost_p90=500_000, income_mean=50_000)

    page = status_page(svc, data)
    assert "cost per article (30 d, mean / p90)" in page
    assert f"{format_credits(400_000)} / {format_credits(500_000)} cr" in page
    assert f"income per article (30 d)<b>{format_credits(50_000)} cr" in page
    svc.engine.dispose()


async def test_no_article_yet_says_so(db_url: str, tmp_path: Path) -> None:
    svc = make_service(db_url, tmp_path, Recorder([]))
    TaskStore(svc.engine).migrate()
    page = status_page(svc, gather(svc))
    assert "n/a (none published)" in page
    svc.engine.dispose()
