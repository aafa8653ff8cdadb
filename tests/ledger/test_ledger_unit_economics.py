"""Issue 15 part 2: cost per published article (mean, p90 by nearest rank) next to income per article.

One read (ledger.reads.unit_economics) feeds the ledger report and the status page; here it is
checked against the numbers worked by hand, on SQLite and the real PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from ledger import RECEIVABLE_ENGAGEMENT, Entry, Journal, compute_account, engagement_account, provider_account
from ledger import reads
from ledger.reads import UnitEconomics, nearest_rank, unit_economics_of
from ledger.reports import build_report
from tests.ledger.conftest import Clock


def _spend(journal: Journal, key: str, task: str, amount: int, when) -> None:  # noqa: ANN001
    journal.post("compute", [Entry(compute_account("writer"), amount), Entry(provider_account("x"), -amount)],
                 idempotency_key=key, task_id=task, time=when)


def _earn(journal: Journal, key: str, task: str, post: str, amount: int, when) -> None:  # noqa: ANN001
    journal.post("engagement", [Entry(RECEIVABLE_ENGAGEMENT, amount), Entry(engagement_account("devto"), -amount)],
                 idempotency_key=key, task_id=task, post_id=post, time=when)


def test_nearest_rank_p90() -> None:
    assert nearest_rank([], 90) == 0
    assert nearest_rank([7], 90) == 7
    assert nearest_rank(list(range(1, 11)), 90) == 9  # ceil(0.9 * 10) = 9th smallest
    assert nearest_rank(list(range(1, 12)), 90) == 10  # ceil(9.9) = 10th
    assert nearest_rank([5, 1, 3], 90) == 5  # ceil(2.7) = 3rd, whatever the input order


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=60))
def test_p90_is_a_value_with_at_least_90_percent_at_or_below_it(costs: list[int]) -> None:
    p90 = nearest_rank(costs, 90)
    assert p90 in costs
    assert sum(c <= p90 for c in costs) * 10 >= 9 * len(costs)  # at least 90 % at or below
    assert sum(c < p90 for c in costs) * 10 < 9 * len(costs)  # and it is the smallest such value


def test_mean_is_rounded_in_integers() -> None:
    tasks = {"a": (1, 0, "p"), "b": (2, 0, "p")}  # 1.5 rounds up
    assert unit_economics_of(tasks) == UnitEconomics(2, 2, 2, 0)
    tasks = {"a": (10**15, 3, "p"), "b": (10**15 + 1, 0, "p"), "c": (1, 0, "p")}
    got = unit_economics_of(tasks)
    assert got.cost_mean == (2 * 10**15 + 2) // 3 and type(got.cost_mean) is int
    assert got.income_mean == 1


def test_unit_economics_over_the_window(journal: Journal, clock: Clock, make_budget) -> None:  # noqa: ANN001
    t0 = clock.now
    # Ten articles earned (a post id), costs 100..1000; one draft never published; one task outside the window.
    for i in range(1, 11):
        _spend(journal, f"c{i}", f"t{i}", 100 * i, t0 + timedelta(minutes=i))
        _earn(journal, f"e{i}", f"t{i}", f"devto:{i}", 30 * i, t0 + timedelta(minutes=i, seconds=30))
    _spend(journal, "draft", "t-draft", 5_000, t0 + timedelta(minutes=20))
    _spend(journal, "old", "t-old", 9_999, t0 - timedelta(days=3))
    _earn(journal, "old-e", "t-old", "devto:old", 1, t0 - timedelta(days=3))
    # A task the outbox published that has not earned yet counts, with 0 income.
    _spend(journal, "fresh", "t-fresh", 1_100, t0 + timedelta(minutes=30))

    until = t0 + timedelta(hours=1)
    got = reads.unit_economics(journal, since=t0, until=until, posts_of={"t-fresh": ["bluesky:abc"]})
    costs = [100 * i for i in range(1, 12)]  # t1..t10 and t-fresh (1,100)
    assert got.articles == 11
    assert got.cost_mean == round(sum(costs) / 11)  # 600
    assert got.cost_p90 == 1_000  # ceil(0.9 * 11) = 10th smallest of 100..1,100
    assert got.income_mean == round(sum(30 * i for i in range(1, 11)) / 11)  # 150
    # Without the outbox only the articles that earned count; the draft never does.
    assert reads.unit_economics(journal, since=t0, until=until).articles == 10
    assert reads.unit_economics(journal, since=None, until=until).articles == 11  # all time: t-old too

    report = build_report(journal, make_budget(), since=t0, until=until)  # the same read, in the report
    assert report.per_article == reads.unit_economics(journal, since=t0, until=until)
    assert report.to_dict()["per_article"] == {"published": 10, "cost_mean": 550, "cost_p90": 900,
                                               "income_mean": 165}


def test_no_article_no_division(journal: Journal, clock: Clock) -> None:
    _spend(journal, "c", "draft", 500, clock.now)
    assert reads.unit_economics(journal, since=None, until=clock.now + timedelta(seconds=1)) == UnitEconomics(0, 0, 0, 0)
