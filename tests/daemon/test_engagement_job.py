"""The earnings job books platform engagement per post, mapped to its task, once per period."""

from __future__ import annotations

from datetime import datetime, timezone

from config.settings import EngagementRates
from daemon.engagement import book_engagement, pull_engagement
from ledger import RECEIVABLE_ENGAGEMENT, Journal
from ledger.budget import Budget
from config.settings import BudgetSettings
from kernel.db import make_engine
from publishers.protocol import Metrics, Published
from wallet.wallets import migrate as migrate_wallet

RATES = {"devto": EngagementRates(view="0.001", reaction="0.01"), "bluesky": EngagementRates(like="0.005")}
NOON = datetime(2026, 11, 21, 12, 5, tzinfo=timezone.utc)


def journal_on(url: str) -> Journal:
    journal = Journal(make_engine(url))
    journal.migrate()
    migrate_wallet(journal.engine)
    return journal


class Record:
    def __init__(self, platform: str, remote_id: str, task_id: str):
        self.platform, self.task_id = platform, task_id
        self.published = Published(platform, remote_id, f"https://x/{remote_id}")


class FakeOutbox:
    def published(self):  # noqa: ANN201
        return [Record("devto", "101", "task-a"), Record("bluesky", "at://p/1", "task-b")]


class FakeChannel:
    def __init__(self) -> None:
        self.views = 10

    async def metrics(self) -> list[Metrics]:
        return [
            Metrics("devto", "101", views=self.views, reactions=2, comments=0),
            Metrics("bluesky", "at://p/1"),  # a bare PDS: no AppView, no counters
        ]


async def test_engagement_is_booked_per_post_with_its_task_and_only_the_delta(db_url: str) -> None:
    journal = journal_on(db_url)
    channel = FakeChannel()
    booked = await pull_engagement(channel, FakeOutbox(), journal, RATES, NOON)
    assert booked == 10 * 1_000 + 2 * 10_000
    assert journal.balance(RECEIVABLE_ENGAGEMENT) == booked
    assert journal.balance("income:engagement:devto") == -booked
    # the same period again books nothing; the next hour books only the new views
    assert await pull_engagement(channel, FakeOutbox(), journal, RATES, NOON) == 0
    channel.views = 15
    later = NOON.replace(hour=13)
    assert await pull_engagement(channel, FakeOutbox(), journal, RATES, later) == 5 * 1_000
    with journal.engine.connect() as conn:
        tasks = {r[0] for r in conn.exec_driver_sql("SELECT task_id FROM ledger_txn WHERE kind = 'engagement'")}
    assert tasks == {"task-a"}


def test_engagement_receivables_do_not_count_as_available(sqlite_url: str) -> None:
    journal = journal_on(sqlite_url)
    budget = Budget(journal, BudgetSettings())
    book_engagement(journal, [Metrics("devto", "7", views=100)], {"devto:7": "t"}, RATES, NOON)
    assert journal.balance(RECEIVABLE_ENGAGEMENT) == 100_000
    assert budget.available() == 0
