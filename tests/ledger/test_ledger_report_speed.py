"""Issue 15.4: the table's report groups tasks in the database and keeps only the most active ones.

`build_report(..., top=N)` must show exactly the rows the full report's table would pick (the N largest
cost + earnings, ties by task id in Python's order), the same task count and the same cost per
article (mean and p90, with the outbox's posts), over whole and partial days, on SQLite and
PostgreSQL; and it refuses to become JSON, which needs every task.
"""

from __future__ import annotations

import heapq
from datetime import timedelta

import pytest
from rich.console import Console

from ledger import Entry, Journal
from ledger.accounts import compute_account, engagement_account, provider_account
from ledger.reports import build_report, render_table
from tests.ledger.conftest import Clock
from tests.ledger.ledgerdata import START, populate

# Ties on cost + earnings whose order depends on comparing ids by code point ("T" < "t" < "ä"), as Python
# does; a PostgreSQL database with a locale's collation (en_US) would put "Task-B" after "task-a".
TIED = ("task-a", "Task-B", "task_c", "täsk-d", "TASK-e")


def more_tasks(journal: Journal) -> None:
    """Tasks with equal activity, one of them earning on a partial day, one costing on two days."""
    for i, task in enumerate(TIED):
        when = START + timedelta(days=1 + i, hours=2 + i)
        journal.post("compute", [Entry(compute_account("writer"), 1_000_000), Entry(provider_account("embedded"), -1_000_000)],
                     idempotency_key=f"tied-{i}", task_id=task, model="small", time=when)
    journal.post("compute", [Entry(compute_account("critic"), 25_000), Entry(provider_account("embedded"), -25_000)],
                 idempotency_key="two-days-1", task_id="task-two-days", time=START + timedelta(days=3, hours=1))
    journal.post("compute", [Entry(compute_account("critic"), 15_000), Entry(provider_account("embedded"), -15_000)],
                 idempotency_key="two-days-2", task_id="task-two-days", time=START + timedelta(days=4, hours=1))
    journal.post("engagement", [Entry("assets:receivable:engagement", 4_000), Entry(engagement_account("devto"), -4_000)],
                 idempotency_key="earn-late", task_id="task-two-days", post_id="devto:77",
                 time=START + timedelta(days=6, hours=1))


def table_rows(full_posts: list, n: int) -> list:
    """What render_table picks from a full report: the n most active, sorted back by task id."""
    return sorted(heapq.nsmallest(n, full_posts, key=lambda p: (-(p.cost + p.earnings), p.task_id)),
                  key=lambda p: p.task_id)


RANGES = {
    "all": (None, None),
    "partial days": (START + timedelta(days=1, hours=3, minutes=1), START + timedelta(days=6, hours=2)),
    "inside one day": (START + timedelta(days=2, hours=4), START + timedelta(days=2, hours=11)),
}


@pytest.mark.parametrize("span", sorted(RANGES))
@pytest.mark.parametrize("n", [1, 3, 4, 7, 50])
def test_top_rows_count_and_unit_economics_equal_the_full_reports(
    journal: Journal, clock: Clock, span: str, n: int
) -> None:
    budget = populate(journal, clock)
    more_tasks(journal)
    since, until = RANGES[span]
    made = {"task-a": ["devto:1"], "Task-B": [], "task-4": ["local:x.md"], "task-gone": ["devto:9"]}
    for posts_of in (None, made):
        full = build_report(journal, budget, since=since, until=until, posts_of=posts_of)
        top = build_report(journal, budget, since=since, until=until, posts_of=posts_of, top=n)
        assert top.posts == table_rows(full.posts, n), (span, n, posts_of)
        assert top.task_count == len(full.posts)
        assert top.per_article == full.per_article
        if len(full.posts) > n:
            with pytest.raises(ValueError, match="most active"):
                top.to_dict()
        else:  # every task fits: the same JSON
            assert top.to_dict() == full.to_dict()


def test_ties_break_by_code_point_order(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    more_tasks(journal)
    top = build_report(journal, budget, top=3)
    tied = [p.task_id for p in build_report(journal, budget).posts if p.task_id in TIED]
    assert [p.task_id for p in top.posts] == sorted(tied)[:3] == ["TASK-e", "Task-B", "task-a"]


def test_the_table_says_how_many_tasks_it_leaves_out(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    more_tasks(journal)
    console = Console(record=True, width=140)
    render_table(build_report(journal, budget, top=2), console, posts=2)
    text = console.export_text()
    assert "the 2 most active of 11 tasks; all in --format json" in text


def test_an_account_tree_is_found_exactly_and_by_index_search(journal: Journal) -> None:
    """Dialect.under selects what accounts.sql_under does; on SQLite through the account index, not a scan.

    (The paid reads' line of the report scanned all 1,000,000 bench postings for income:reads: ~200 ms.)
    """
    from sqlalchemy import text

    from ledger.accounts import READS, sql_under

    names = ["income:reads", "income:reads:article", "income:reads:brief", "income:readsx", "income:reads-x",
             "income:read", "income:reads0", "income:tips", "income:reads:a:b"]
    sql = journal.sql
    with journal.engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE names (account VARCHAR(200))"))
        for name in names:
            conn.execute(text("INSERT INTO names VALUES (:a)"), {"a": name})
        fast = {r[0] for r in conn.execute(text(f"SELECT account FROM names WHERE {sql.under(READS)}"))}
        exact = {r[0] for r in conn.execute(text(f"SELECT account FROM names WHERE {sql_under(READS)}"))}
        assert fast == exact == {"income:reads", "income:reads:article", "income:reads:brief", "income:reads:a:b"}
        if not sql.pg:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT SUM(p.amount) FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id "
                f"WHERE {sql.under(READS, 'p.account')} AND t.time < '2027-01-01'")))
            assert "SEARCH p USING INDEX ix_posting_account_txn (account>? AND account<?)" in plan, plan
