"""Engagement income: deltas since the last pull, once per post and period, never available balance."""

from __future__ import annotations

from config.settings import BudgetSettings, EngagementRates
from ledger.budget import Budget
from ledger.journal import RECEIVABLE_ENGAGEMENT, Journal, engagement_account
from wallet import accrue_engagement

RATES = EngagementRates(view="0.001", reaction="0.05", like="0.02")


def accrue(journal: Journal, period: str, **metrics: int) -> int:
    return accrue_engagement(
        journal, platform="devto", post_id="post-1", task_id="task-1", metrics=metrics, rates=RATES, period=period
    )


def test_the_first_pull_books_everything_at_the_configured_rates(journal: Journal) -> None:
    assert accrue(journal, "2026-11-21T12", views=1000, reactions=4) == 1000 * 1_000 + 4 * 50_000
    assert journal.balance(RECEIVABLE_ENGAGEMENT) == 1_200_000
    assert journal.balance(engagement_account("devto")) == -1_200_000


def test_only_the_growth_since_the_last_pull_is_booked(journal: Journal) -> None:
    accrue(journal, "p1", views=100)
    assert accrue(journal, "p2", views=150, likes=2) == 50 * 1_000 + 2 * 20_000


def test_a_period_is_booked_once(journal: Journal) -> None:
    assert accrue(journal, "p1", views=100) == 100_000
    assert accrue(journal, "p1", views=500) == 0  # same period: nothing, the growth waits
    assert accrue(journal, "p2", views=500) == 400_000


def test_a_counter_that_goes_down_books_nothing_and_never_pays_twice(journal: Journal) -> None:
    accrue(journal, "p1", likes=10)
    assert accrue(journal, "p2", likes=7) == 0
    assert accrue(journal, "p3", likes=11) == 20_000


def test_metrics_without_a_rate_accrue_nothing(journal: Journal) -> None:
    assert accrue(journal, "p1", bookmarks=50) == 0
    assert journal.balance(RECEIVABLE_ENGAGEMENT) == 0


def test_the_accrual_names_its_post_and_task_for_per_post_pnl(journal: Journal) -> None:
    accrue(journal, "p1", views=10)
    from sqlalchemy import text

    with journal.engine.connect() as conn:
        row = conn.execute(text("SELECT post_id, task_id, kind FROM ledger_txn WHERE kind = 'engagement'")).one()
    assert tuple(row) == ("post-1", "task-1", "engagement")


def test_receivables_are_not_available_balance(journal: Journal) -> None:
    accrue(journal, "p1", views=5000)
    assert Budget(journal, BudgetSettings()).snapshot().available == 0
