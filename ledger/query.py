"""Sums of postings over a time range, fast at any ledger size; the period series.

`grouped()` reads whole UTC days from `ledger_rollup` and only the partial
days at either end of the range from the postings themselves (through the
index on ledger_txn.time), so a report over a million postings reads a few
thousand rollup rows and a day or two of postings.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

from ledger.accounts import COMPUTE, EXPENSES, INCOME, WALLET, is_expense, is_income, sql_under, under
from ledger.journal import Journal
from ledger.accounts import COMMODITY
from ledger.sql import cursor

UTC = timezone.utc
By = Literal["day", "week", "month"]
PERIODS = ("day", "week", "month")

# Conditions on the rollup's columns, usable as `where` below.
IS_EXPENSE = sql_under(EXPENSES)
IS_COMPUTE = sql_under(COMPUTE)
IS_INCOME = sql_under(INCOME)
WALLET_TREE = sql_under(WALLET)


def midnight(d: date) -> datetime:
    """00:00 UTC of a day."""
    return datetime.combine(d, time(0), tzinfo=UTC)


def as_moment(value: date | datetime | None, *, end: bool = False) -> datetime | None:
    """A range bound as an aware UTC datetime; a date means its midnight (or the next one when `end`)."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None
    return midnight(value + timedelta(days=1) if end else value)


@dataclass(frozen=True)
class Source:
    """A rollup table, its key columns and summed columns, and the same rows computed from postings."""

    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    raw: str  # name of the Dialect method giving the per-posting subquery


POSTINGS = Source("ledger_rollup", ("day", "account", "commodity", "model"), ("amount",), "posting_rows")
TASKS = Source("ledger_task_rollup", ("day", "task_id", "post_id", "commodity"), ("cost", "earnings"), "task_rows")


def _pieces(
    journal: Journal, source: Source, since: datetime | None, until: datetime | None
) -> list[tuple[str, tuple, str, tuple]]:
    """(FROM clause, its params, extra WHERE, its params) covering since <= time < until.

    Whole days come from the rollup table; the partial days at either end from postings.
    """
    sql = journal.sql

    def raw(a: datetime | None, b: datetime | None) -> tuple[str, tuple, str, tuple]:
        parts, params = sql.window(a, b)
        return f"({getattr(sql, source.raw)(' AND '.join(parts))}) r", tuple(params), "", ()

    if since is not None and until is not None and until <= since:
        return []
    first_whole = None
    if since is not None:
        first_whole = since.date() if since == midnight(since.date()) else since.date() + timedelta(days=1)
    end_whole = None if until is None else until.date()
    if first_whole is not None and end_whole is not None and first_whole > end_whole:
        return [raw(since, until)]  # both ends inside one day
    extra, params = "", []
    if first_whole is not None:
        extra += " AND day >= ?"
        params.append(first_whole.isoformat())
    if end_whole is not None:
        extra += " AND day < ?"
        params.append(end_whole.isoformat())
    pieces = [(source.table, (), extra, tuple(params))]
    if since is not None and first_whole is not None and midnight(first_whole) != since:
        pieces.append(raw(since, midnight(first_whole)))
    if until is not None and end_whole is not None and midnight(end_whole) != until:
        pieces.append(raw(midnight(end_whole), until))
    return pieces


def sums(
    journal: Journal,
    source: Source,
    *,
    since: datetime | None,
    until: datetime | None,
    by: Sequence[str],
    where: str = "",
    commodity: str = COMMODITY,
    conn: Any = None,
) -> dict[tuple, tuple[int, ...]]:
    """The source's values summed over since <= time < until, grouped by key columns `by`."""
    assert all(col in source.keys for col in by), by
    if conn is None:
        with journal.engine.connect() as c:
            return sums(journal, source, since=since, until=until, by=by, where=where, commodity=commodity, conn=c)
    sql = journal.sql
    cur = cursor(conn)
    k = len(by)
    cols = ", ".join([*by, *(f"SUM({v})" for v in source.values)])
    group = f"GROUP BY {', '.join(by)}" if by else ""
    cond = f"commodity = ? {('AND ' + where) if where else ''}"
    out: dict[tuple, tuple[int, ...]] = {}
    for rows, rows_params, extra, extra_params in _pieces(journal, source, since, until):
        cur.execute(
            sql.q(f"SELECT {cols} FROM {rows} WHERE {cond} {extra} {group}"), (*rows_params, commodity, *extra_params)
        )
        for row in cur.fetchall():
            if row[-1] is None:  # SUM of no rows
                continue
            key, values = tuple(row[:k]), tuple(int(v) for v in row[k:])
            have = out.get(key)
            out[key] = values if have is None else tuple(a + b for a, b in zip(have, values))
    return out


def task_totals(
    journal: Journal, *, since: datetime | None, until: datetime | None, commodity: str = COMMODITY, conn: Any = None
) -> dict[str, tuple[int, int, str]]:
    """task_id -> (cost, earnings, its post ids comma-separated and sorted) over since <= time < until."""
    if conn is None:
        with journal.engine.connect() as c:
            return task_totals(journal, since=since, until=until, commodity=commodity, conn=c)
    sql = journal.sql
    cur = cursor(conn)
    posts = (
        "string_agg(DISTINCT NULLIF(post_id, ''), ',')" if sql.pg else "group_concat(DISTINCT NULLIF(post_id, ''))"
    )
    out: dict[str, tuple[int, int, str]] = {}
    for rows, rows_params, extra, extra_params in _pieces(journal, TASKS, since, until):
        cur.execute(
            sql.q(f"SELECT task_id, SUM(cost), SUM(earnings), {posts} FROM {rows} WHERE commodity = ? {extra} "
                  "GROUP BY task_id"),
            (*rows_params, commodity, *extra_params),
        )
        for task_id, cost, earnings, post_ids in cur.fetchall():
            post_ids = post_ids or ""
            have = out.get(task_id)
            if have is not None:  # a task on a partial day too (rare): merge
                cost, earnings = have[0] + cost, have[1] + earnings
                post_ids = ",".join(p for p in (have[2], post_ids) if p)
            if "," in post_ids:
                post_ids = ",".join(sorted(set(post_ids.split(","))))
            out[task_id] = (int(cost), int(earnings), post_ids)
    return out


@dataclass(frozen=True)
class TaskSummary:
    """What the report's table shows of the tasks, summed in SQL (so 50,000 tasks never reach Python).

    tasks: how many tasks booked anything in the range; top: the most active (cost + earnings, then
    task id), each (task_id, cost, earnings, its booked post ids sorted and comma-separated);
    articles, cost_sum, cost_p90, earnings_sum: over the tasks with a post (booked, or in `made`).
    """

    tasks: int
    top: list[tuple[str, int, int, str]]
    articles: int
    cost_sum: int
    cost_p90: int
    earnings_sum: int


def task_summary(
    journal: Journal,
    *,
    since: datetime | None,
    until: datetime | None,
    made: Sequence[str] = (),
    top: int = 20,
    commodity: str = COMMODITY,
    conn: Any = None,
) -> TaskSummary:
    """task_totals' figures the table needs, grouped in the database: the `top` most active, the count and
    cost per article (mean's sums and the p90 by nearest rank); `made`: tasks the outbox says posted."""
    if conn is None:
        with journal.engine.connect() as c:
            return task_summary(journal, since=since, until=until, made=made, top=top, commodity=commodity, conn=c)
    sql = journal.sql
    parts, params = [], []
    for rows, rows_params, extra, extra_params in _pieces(journal, TASKS, since, until):
        parts.append(f"SELECT task_id, cost, earnings, post_id FROM {rows} WHERE commodity = ? {extra}")
        params += [*rows_params, commodity, *extra_params]
    if not parts:
        return TaskSummary(0, [], 0, 0, 0, 0)
    rows = " UNION ALL ".join(parts)
    made_ids = (
        "SELECT json_array_elements_text(CAST(? AS json)) AS task_id" if sql.pg
        else "SELECT value AS task_id FROM json_each(?)"
    )
    by_id = 'task_id COLLATE "C"' if sql.pg else "task_id"  # Python's str order, as the JSON's rows
    cur = cursor(conn)
    # One statement: the per-task sums are grouped once and read three ways (a CTE read twice is materialised).
    cur.execute(
        sql.q(
            f"WITH made AS ({made_ids}), "
            f"per_task AS (SELECT task_id, SUM(cost) AS c, SUM(earnings) AS e, MAX(post_id) AS p FROM ({rows}) r "
            "GROUP BY task_id), "
            "pub AS (SELECT c, e FROM per_task WHERE p <> '' OR task_id IN (SELECT task_id FROM made)), "
            "ranked AS (SELECT c, ROW_NUMBER() OVER (ORDER BY c) AS rn, COUNT(*) OVER () AS n FROM pub) "
            "SELECT 0, '', (SELECT COUNT(*) FROM per_task), (SELECT COUNT(*) FROM pub), (SELECT SUM(c) FROM pub), "
            "(SELECT SUM(e) FROM pub), (SELECT c FROM ranked WHERE rn = (9 * n + 9) / 10) "
            f"UNION ALL SELECT * FROM (SELECT 1, task_id, c, e, 0, 0, 0 FROM per_task ORDER BY c + e DESC, {by_id} "
            "LIMIT ?) most"
        ),
        (json.dumps(list(made)), *params, top),
    )
    found = cur.fetchall()
    head = next(r for r in found if r[0] == 0)
    chosen = [(str(r[1]), int(r[2]), int(r[3])) for r in found if r[0] == 1]
    posts: dict[str, set[str]] = {}
    if chosen:
        cur.execute(
            sql.q(f"SELECT DISTINCT task_id, post_id FROM ({rows}) r WHERE post_id <> '' AND task_id IN "
                  f"({', '.join('?' * len(chosen))})"),
            (*params, *(t for t, _, _ in chosen)),
        )
        for task_id, post_id in cur.fetchall():
            posts.setdefault(task_id, set()).add(post_id)
    return TaskSummary(
        tasks=int(head[2]),
        top=[(t, c, e, ",".join(sorted(posts.get(t, ())))) for t, c, e in chosen],
        articles=int(head[3]),
        cost_sum=int(head[4] or 0),
        cost_p90=int(head[6] or 0),
        earnings_sum=int(head[5] or 0),
    )


def grouped(
    journal: Journal,
    *,
    since: datetime | None,
    until: datetime | None,
    by: Sequence[str],
    where: str = "",
    commodity: str = COMMODITY,
    conn: Any = None,
) -> dict[tuple, int]:
    """SUM(amount) of postings with since <= time < until, grouped by ledger_rollup columns `by`."""
    found = sums(journal, POSTINGS, since=since, until=until, by=by, where=where, commodity=commodity, conn=conn)
    return {k: v[0] for k, v in found.items()}


def first_time(journal: Journal, conn: Any = None) -> datetime | None:
    """When the first transaction happened (None for an empty ledger)."""
    if conn is None:
        with journal.engine.connect() as c:
            return first_time(journal, c)
    cur = cursor(conn)
    cur.execute("SELECT MIN(time) FROM ledger_txn")
    return journal.sql.parse_ts(cur.fetchone()[0])


def bucket(d: date, by: str) -> date:
    """The first day of the period (day, ISO week from Monday, calendar month) holding d."""
    if by == "day":
        return d
    if by == "week":
        return d - timedelta(days=d.weekday())
    if by == "month":
        return d.replace(day=1)
    raise ValueError(f"by must be one of {', '.join(PERIODS)}, got {by!r}")


def next_bucket(start: date, by: str) -> date:
    """The first day of the period after the one starting on `start`."""
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class Period:
    """One row of the series: [start, end) in UTC days; ucr spent, earned, and the wallet at its end."""

    start: date
    end: date
    spend: int
    income: int
    balance: int


def period_series(
    journal: Journal,
    *,
    since: datetime | None,
    until: datetime,
    by: str = "day",
    conn: Any = None,
) -> list[Period]:
    """Spend (expenses), income and wallet balance per day, week or month over [since, until)."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {', '.join(PERIODS)}, got {by!r}")
    if conn is None:
        with journal.engine.connect() as c:
            return period_series(journal, since=since, until=until, by=by, conn=c)
    start = since or first_time(journal, conn)
    if start is None or until <= start:
        return []
    opening = grouped(journal, since=None, until=start, by=(), where=WALLET_TREE, conn=conn).get((), 0)
    daily = grouped(journal, since=start, until=until, by=("day", "account"), conn=conn)
    spend: dict[date, int] = defaultdict(int)
    income: dict[date, int] = defaultdict(int)
    wallet: dict[date, int] = defaultdict(int)
    for (day, account), amount in daily.items():
        b = bucket(date.fromisoformat(day), by)
        if is_expense(account):
            spend[b] += amount
        elif is_income(account):
            income[b] -= amount
        if under(account, WALLET):
            wallet[b] += amount
    last = (until - timedelta(microseconds=1)).date()
    rows, b, balance = [], bucket(start.date(), by), opening
    while b <= last:
        nxt = next_bucket(b, by)
        balance += wallet.get(b, 0)
        rows.append(Period(b, nxt, spend.get(b, 0), income.get(b, 0), balance))
        b = nxt
    return rows
