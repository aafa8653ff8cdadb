"""The ledger read model (ledger.reads) on SQLite and the real PostgreSQL: each figure equals the slow sum."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger import (
    OPENING,
    RECEIVABLE_ENGAGEMENT,
    TIPS,
    WALLET,
    Budget,
    Entry,
    Journal,
    compute_account,
    engagement_account,
    provider_account,
)
from ledger import reads
from ledger.accounts import COMPUTE, PROVIDERS, is_expense, is_income, leaf, under
from ledger.funding import deposit
from ledger.reports import build_report
from tests.ledger.conftest import Clock
from tests.ledger.ledgerdata import populate


def _compute(journal: Journal, key: str, agent: str, amount: int, **kw: object) -> None:
    journal.post("compute", [Entry(compute_account(agent), amount), Entry(provider_account("x"), -amount)],
                 idempotency_key=key, **kw)


def test_task_and_post_figures(journal: Journal, clock: Clock) -> None:
    _compute(journal, "c1", "writer", 400, task_id="t1", time=clock.now)
    _compute(journal, "c2", "critic", 100, task_id="t1", time=clock.advance(days=1))  # another day: two rollup rows
    _compute(journal, "c3", "writer", 70, task_id="t2", time=clock.now)
    journal.post("engagement", [Entry(RECEIVABLE_ENGAGEMENT, 250), Entry(engagement_account("devto"), -250)],
                 idempotency_key="e1", task_id="t1", post_id="devto:9", time=clock.advance(hours=1))
    journal.post("engagement", [Entry(RECEIVABLE_ENGAGEMENT, 30), Entry(engagement_account("bluesky"), -30)],
                 idempotency_key="e2", post_id="selfpub-t2", time=clock.advance(hours=1))

    many = [f"none-{i}" for i in range(1_100)] + ["t1", "t2"]  # more ids than one IN list holds
    assert reads.task_costs(journal, many) == {"t1": 500, "t2": 70}
    assert reads.task_cost(journal, "t1") == 500 and reads.task_cost(journal, "nope") == 0
    assert reads.post_earnings(journal, ["devto:9", "selfpub-t2", "other"]) == {"devto:9": 250, "selfpub-t2": 30}
    assert reads.post_earnings(journal, ["devto:9", "selfpub-t2"], without_task=True) == {"selfpub-t2": 30}
    # The bandit's history: income by task id, plus by post key on transactions with no task.
    assert reads.task_outcomes(journal, [("t1", ["selfpub-t1"]), ("t2", ["selfpub-t2"]), ("t3", [])]) == {
        "t1": (500, 250), "t2": (70, 30), "t3": (0, 0)}
    posts = reads.ledger_posts(journal)
    assert [(p.post_id, p.platform, p.cost, p.earnings) for p in posts] == [
        ("selfpub-t2", "bluesky", 0, 30), ("devto:9", "devto", 500, 250)]
    assert [p.post_id for p in reads.ledger_posts(journal, limit=1)] == ["selfpub-t2"]


def test_spend_by_agent_and_model_match_the_balances(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    balances = journal.balances()
    by_agent = reads.spend_by_agent(journal)
    assert by_agent == {leaf(a, COMPUTE): v for a, v in balances.items() if under(a, COMPUTE)}
    assert set(by_agent) == {"research", "writer", "critic"}
    by_model = reads.spend_by_model(journal)
    assert sum(by_model.values()) == sum(by_agent.values()) and set(by_model) == {"small", "large", "unknown"}
    assert reads.income_total(journal) == -sum(v for a, v in balances.items() if is_income(a))
    report = build_report(journal, budget)
    assert report.spend_by_agent == by_agent and report.spend_by_model == by_model


def _slow_points(journal: Journal, until) -> list[tuple]:  # noqa: ANN001
    """Balance, spend, income after every transaction, recomputed posting by posting."""
    with journal.reading() as cur:
        cur.execute("SELECT t.time, p.account, p.amount FROM ledger_txn t JOIN ledger_posting p ON p.txn_id = t.id "
                    "WHERE p.commodity = 'CR' ORDER BY t.time, t.id")
        rows = [(journal.sql.parse_ts(w), a, int(v)) for w, a, v in cur.fetchall()]
    bal = spend = income = 0
    out: dict = {}
    for when, account, amount in rows:
        if under(account, WALLET, PROVIDERS):
            bal += amount
        elif is_expense(account):
            spend += amount
        elif is_income(account):
            income -= amount
        out[when] = (bal, spend, income)
    return [(when, *v) for when, v in out.items() if when < until]


def test_money_series_equals_the_slow_sum_and_shows_a_pause_and_a_resume(
    journal: Journal, clock: Clock, make_budget
) -> None:  # noqa: ANN001
    budget: Budget = make_budget(min_balance="0.35", resume_balance="0.6", daily_cap="5", per_cycle_cap="5")
    deposit(journal, 1_000_000, idempotency_key="fund", time=clock.now)
    paused_at = None
    for n in range(5):
        clock.advance(minutes=3)
        budget.commit(budget.reserve("writer", 200_000, provider="embedded"), 200_000)
        if budget.evaluate().paused:
            paused_at = clock.now
            break
    assert paused_at is not None
    clock.advance(minutes=5)
    journal.post("tip", [Entry(WALLET, 600_000), Entry(TIPS, -600_000)], idempotency_key="tip", time=clock.now)
    assert not budget.evaluate().paused
    until = clock.advance(minutes=1)

    points = reads.money_series(journal, since=until - timedelta(days=30), until=until)
    assert points[0].at == reads.first_time(journal) and points[-1].at == until  # a young ledger starts at its start
    assert [(p.at, p.balance, p.spend, p.income) for p in points[:-1]] == _slow_points(journal, until)
    low = min(points, key=lambda p: p.balance)
    assert low.balance < 350_000 and low.at == paused_at  # the pause: below min_balance
    assert points[-1].balance >= 600_000 and points[-1].income == 600_000  # the tip, and the resume it allowed
    # A window that starts later opens with the totals before it.
    later = reads.money_series(journal, since=paused_at, until=until)
    assert later[0] == low and later[-1] == points[-1]


def test_money_series_past_the_step_limit_is_per_day(journal: Journal, clock: Clock, monkeypatch) -> None:  # noqa: ANN001
    populate(journal, clock)
    until = clock.now
    fine = reads.money_series(journal, until=until)
    monkeypatch.setattr(reads, "STEP_LIMIT", 5)
    daily = reads.money_series(journal, until=until)
    assert len(daily) < len(fine) and daily[-1] == fine[-1]
    for p in daily[1:-1]:
        assert p.at.hour == 0 and p.at.minute == 0  # a day's end
        before = [q for q in fine if q.at < p.at][-1]
        assert (p.balance, p.spend, p.income) == (before.balance, before.spend, before.income)


def test_an_empty_ledger_draws_a_flat_zero_line(journal: Journal, clock: Clock) -> None:
    since = clock.now - timedelta(days=30)
    flat = reads.money_series(journal, since=since, until=clock.now)
    assert flat == [reads.Point(since, 0, 0, 0), reads.Point(clock.now, 0, 0, 0)]
    assert reads.money_series(journal, until=clock.now) == []  # no start: nothing to draw


def test_runway_takes_the_real_budget_and_says_when_history_is_short(journal: Journal, clock: Clock, make_budget) -> None:  # noqa: ANN001
    budget: Budget = make_budget(min_balance="0", resume_balance="0", daily_cap="100", per_cycle_cap="100")
    none = reads.runway(journal, budget)
    assert none.days is None and "nothing spent" in none.note
    journal.post("deposit", [Entry(WALLET, 10_000_000), Entry(OPENING, -10_000_000)], idempotency_key="d",
                 time=clock.now)
    clock.advance(hours=2)
    budget.commit(budget.reserve("writer", 500_000, provider="embedded"), 500_000)
    young = reads.runway(journal, budget)  # the budget's own clock: two hours of history
    assert "2.0 h of ledger history" in young.note
    assert young.days == pytest.approx(9_500_000 / 500_000, abs=0.01)  # averaged over one day, and said so
    clock.advance(days=3)
    settled = reads.runway(journal, budget)
    assert settled.note == "" and settled.burn.window_days == 7
    per_day = 500_000 * 86_400 // int((clock.now - reads.first_time(journal)).total_seconds())
    assert settled.burn.per_day == per_day
    assert reads.runway_days(journal, budget) == settled.days == build_report(journal, budget).runway_days
    assert reads.runway_days(journal, budget, available=0) == 0.0
