"""The ledger read model: every figure other rooms read from the ledger, computed one way.

    task_costs(journal, task_ids)         {task: ucr} expenses booked with the task id
    task_outcomes(journal, posts)         {task: (spend, income)} for the bandit's history
    post_earnings(journal, post_ids)      {post id: ucr} income booked with the post id
    ledger_posts(journal, limit)          [PostRow] posts the ledger knows, newest first
    spend_by_agent / spend_by_model       compute spend per agent, per model
    income_total(journal)                 every credit of income so far
    paid_over_x402(journal, since)        ucr the wallet paid for inference over x402 since then,
                                          net of voided payments (the spend policy's daily cap)
    x402_payments_open(journal)           [PaidCall] x402 payments booked and not voided (reconcile)
    money_series(journal, since, until)   [Point] balance, spend, income over time: the
                                          status page's chart and `selfpub ledger plot`
    money_story(journal, since, until,    the series and its events (deposits, tips, pauses,
                min_balance, resume_balance)  resumes): what both charts mark
    runway(journal, budget, now)          Runway: days the available balance lasts at the
                                          trailing burn, and a note when the figure is rough
    unit_economics(journal, since, until) UnitEconomics: cost per published article (mean, p90)
                                          next to income per article: the ledger report and
                                          the status page
    reads_by_kind(journal, since, until)  {kind: ReadIncome} paid reads over x402: count and ucr
    break_even(economics, price)          BreakEven: article reads that pay for a published article

Definitions (in CR, micro-credits):
    cost of a task      expenses posted in transactions carrying its task id
                        (ledger_task_rollup: one row per day, so any history is a few rows)
    earnings            income posted in transactions carrying the task or post id
    balance             wallet (with sub-accounts) minus what is owed to providers: what
                        the budget's `available` is before open reservations, so the
                        pause below min_balance and the resume after a tip show in it
    spend, income       cumulative expenses and income from the ledger's first transaction
    burn                expenses per day over the trailing window (net: minus income); a
                        ledger younger than the window uses its own age, at least one day
    runway              available / burn per day; None when nothing was spent
    events              a deposit (equity:opening -> wallet) or a tip (income:tips) at its
                        transaction; a pause where the series' balance falls under min_balance
                        and a resume where it gets back to resume_balance (the budget's
                        hysteresis, read off the same series, so both charts show the same)
    published article   a task with a post id on one of its transactions in the window (its
                        post earned), or one the publishers' outbox says made a post
                        (`posts_of`); its cost and income are those booked in the window
    cost per article    mean (rounded to the nearest ucr) and p90 by nearest rank (the
                        ceil(0.9 n)-th smallest) of the published articles' costs
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from kernel.money import format_credits
from ledger.accounts import (
    COMPUTE,
    EXPENSES,
    INCOME,
    OPENING,
    PROVIDERS,
    READS,
    TIPS,
    WALLET,
    is_expense,
    is_income,
    leaf,
    sql_under,
    under,
)
from ledger.budget import X402_KIND, Budget
from ledger.journal import Journal
from ledger.accounts import COMMODITY
from ledger.query import IS_COMPUTE, IS_EXPENSE, IS_INCOME, first_time, grouped, midnight, task_totals
from ledger.sql import cursor

if TYPE_CHECKING:
    from sqlalchemy import Connection

UTC = timezone.utc
CHUNK = 500  # ids per IN (...) list
DEFAULT_WINDOW_DAYS = 7
MIN_HISTORY = timedelta(days=1)  # less ledger history than this: the runway is rough, and says so
JUST_AFTER = timedelta(microseconds=1)  # "until now" includes what happened at now
STEP_LIMIT = 20_000  # transactions in a series' range above which it is drawn per day from the rollup

_BALANCE = f"({sql_under(WALLET, 'p.account')} OR {sql_under(PROVIDERS, 'p.account')})"
_EXPENSE = sql_under(EXPENSES, "p.account")
_INCOME = sql_under(INCOME, "p.account")
_FUNDING = f"({sql_under(OPENING, 'p.account')} OR {sql_under(TIPS, 'p.account')})"


@contextmanager
def _connected(journal: Journal, conn: Connection | None) -> Iterator[Connection]:
    if conn is not None:
        yield conn
        return
    with journal.engine.connect() as c:
        yield c


def _chunks(seq: list, n: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- tasks and posts ---------------------------------------------------------------------


def task_totals_of(
    journal: Journal, task_ids: Iterable[str], *, conn: Connection | None = None
) -> dict[str, tuple[int, int]]:
    """task id -> (cost, earnings) over all time: expenses and income booked with the task id."""
    ids = sorted({t for t in task_ids if t})
    out: dict[str, tuple[int, int]] = {}
    if not ids:
        return out
    sql = journal.sql
    with _connected(journal, conn) as c:
        cur = cursor(c)
        for chunk in _chunks(ids):
            cur.execute(
                sql.q(f"SELECT task_id, SUM(cost), SUM(earnings) FROM ledger_task_rollup "
                      f"WHERE commodity = ? AND task_id IN ({_marks(len(chunk))}) GROUP BY task_id"),
                (COMMODITY, *chunk),
            )
            out.update({tid: (int(cost), int(earned)) for tid, cost, earned in cur.fetchall()})
    return out


def task_costs(journal: Journal, task_ids: Iterable[str], *, conn: Connection | None = None) -> dict[str, int]:
    """task id -> ucr spent on it (tasks with no spend are left out)."""
    return {t: cost for t, (cost, _) in task_totals_of(journal, task_ids, conn=conn).items() if cost}


def task_cost(journal: Journal, task_id: str) -> int:
    """Ucr spent on one task."""
    return task_costs(journal, [task_id]).get(task_id, 0)


def post_earnings(
    journal: Journal, post_ids: Iterable[str], *, without_task: bool = False, conn: Connection | None = None
) -> dict[str, int]:
    """post id -> income booked with it; `without_task`: only transactions that carry no task id."""
    ids = sorted({p for p in post_ids if p})
    out: dict[str, int] = {}
    if not ids:
        return out
    sql = journal.sql
    untasked = " AND t.task_id IS NULL" if without_task else ""
    with _connected(journal, conn) as c:
        cur = cursor(c)
        for chunk in _chunks(ids):
            cur.execute(
                sql.q(f"SELECT t.post_id, SUM(p.amount) FROM {sql.txn_postings} "
                      f"WHERE p.commodity = ? AND {_INCOME} AND t.post_id IN ({_marks(len(chunk))}){untasked} "
                      "GROUP BY t.post_id"),
                (COMMODITY, *chunk),
            )
            out.update({pid: -int(total) for pid, total in cur.fetchall()})
    return out


def task_outcomes(journal: Journal, posts: Sequence[tuple[str, Sequence[str]]]) -> dict[str, tuple[int, int]]:
    """task id -> (spend, income) for (task id, its post keys): the bandit's history.

    Income is what was booked with the task id, plus what was booked with one of
    its post keys on a transaction that carries no task id.
    """
    with journal.engine.connect() as conn:
        totals = task_totals_of(journal, [t for t, _ in posts], conn=conn)
        key_to_task = {k: t for t, keys in posts for k in keys}
        by_key = post_earnings(journal, key_to_task, without_task=True, conn=conn)
    out = {}
    for task_id, _ in posts:
        spend, income = totals.get(task_id, (0, 0))
        out[task_id] = (spend, income)
    for key, earned in by_key.items():
        spend, income = out[key_to_task[key]]
        out[key_to_task[key]] = (spend, income + earned)
    return out


@dataclass(frozen=True)
class PostRow:
    """One published post with what it cost and what it earned (ucr)."""

    when: datetime
    platform: str
    post_id: str
    title: str
    cost: int
    earnings: int
    url: str = ""  # where a reader opens it; "" when none can (a local file, a Dev.to draft, unknown)


def ledger_posts(journal: Journal, limit: int = 10) -> list[PostRow]:
    """The latest posts the ledger knows (transactions with a post id), with their tasks' cost and their income."""
    sql = journal.sql
    posts: dict[str, dict[str, Any]] = {}
    with journal.engine.connect() as conn:
        cur = cursor(conn)
        cur.execute(
            sql.q(f"SELECT t.post_id, t.task_id, t.time, p.account, p.amount FROM {sql.txn_postings} "
                  "WHERE t.post_id IS NOT NULL AND p.commodity = ? ORDER BY t.id, p.id"),
            (COMMODITY,),
        )
        for post_id, task_id, when, account, amount in cur.fetchall():
            when = sql.parse_ts(when)
            p = posts.setdefault(post_id, {"when": when, "tasks": set(), "earn": 0, "platform": ""})
            p["when"] = min(p["when"], when)
            if task_id:
                p["tasks"].add(task_id)
            if is_income(account):
                p["earn"] -= int(amount)
                p["platform"] = account.rsplit(":", 1)[-1]
        latest = sorted(posts.items(), key=lambda kv: kv[1]["when"], reverse=True)[:limit]
        costs = task_costs(journal, {t for _, p in latest for t in p["tasks"]}, conn=conn)
    return [
        PostRow(p["when"], p["platform"] or "?", post_id, post_id, sum(costs.get(t, 0) for t in p["tasks"]), p["earn"])
        for post_id, p in latest
    ]


# -- spend and income --------------------------------------------------------------------


def spend_by_agent(
    journal: Journal, *, since: datetime | None = None, until: datetime | None = None, conn: Connection | None = None
) -> dict[str, int]:
    """Compute spend per agent (expenses:compute:<agent>) over since <= time < until (default: all time)."""
    found = grouped(journal, since=since, until=until, by=("account",), where=IS_COMPUTE, conn=conn)
    return {leaf(account, COMPUTE): amount for (account,), amount in sorted(found.items())}


def spend_by_model(
    journal: Journal, *, since: datetime | None = None, until: datetime | None = None, conn: Connection | None = None
) -> dict[str, int]:
    """Compute spend per model ("unknown" when none was recorded) over since <= time < until."""
    found = grouped(journal, since=since, until=until, by=("model",), where=IS_COMPUTE, conn=conn)
    return {(model or "unknown"): amount for (model,), amount in sorted(found.items())}


def income_total(journal: Journal) -> int:
    """Every credit of income so far."""
    return -journal.balance(INCOME)


def paid_over_x402(journal: Journal, since: datetime, *, conn: Connection | None = None) -> int:
    """ucr paid from the wallet over x402 since `since` (a voided payment's reversal takes it back)."""
    sql = journal.sql
    with _connected(journal, conn) as c:
        cur = cursor(c)
        cur.execute(
            sql.q(
                "SELECT COALESCE(SUM(p.amount), 0) FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id "
                "WHERE p.account = ? AND p.commodity = ? AND t.time >= ? AND (t.kind = ? OR t.reverses_id IN "
                "(SELECT id FROM ledger_txn WHERE kind = ?))"
            ),
            (WALLET, COMMODITY, sql.ts(since), X402_KIND, X402_KIND),
        )
        return -int(cur.fetchone()[0])


@dataclass(frozen=True)
class PaidCall:
    """One x402 payment for inference as booked, not reversed: its transaction, key and tx hash."""

    txn_id: int
    key: str  # x402:<network>:<payer>:<nonce>
    time: datetime
    tx_hash: str | None
    amount: int  # ucr booked


def x402_payments_open(journal: Journal, *, conn: Connection | None = None) -> list[PaidCall]:
    """Every x402 payment booked and not reversed (a void one is reversed), oldest first."""
    sql = journal.sql
    with _connected(journal, conn) as c:
        cur = cursor(c)
        cur.execute(
            sql.q(
                "SELECT t.id, t.idempotency_key, t.time, t.tx_hash, -p.amount FROM ledger_txn t "
                "JOIN ledger_posting p ON p.txn_id = t.id AND p.account = ? AND p.commodity = ? "
                "WHERE t.kind = ? AND NOT EXISTS (SELECT 1 FROM ledger_txn r WHERE r.reverses_id = t.id) "
                "ORDER BY t.id"
            ),
            (WALLET, COMMODITY, X402_KIND),
        )
        return [PaidCall(int(i), k, sql.parse_ts(t), h, int(a)) for i, k, t, h, a in cur.fetchall()]


# -- money over time ---------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """Money at one moment, in micro-credits."""

    at: datetime
    balance: int  # wallet minus provider liabilities
    spend: int  # all expenses so far
    income: int  # all income so far


def _add(point: list[int], account: str, amount: int) -> None:
    if under(account, WALLET, PROVIDERS):
        point[0] += amount
    elif is_expense(account):
        point[1] += amount
    elif is_income(account):
        point[2] -= amount


def money_series(
    journal: Journal, *, since: datetime | None = None, until: datetime, conn: Connection | None = None
) -> list[Point]:
    """Balance, cumulative spend and income: at the start, after each transaction time, and at `until`.

    The start is `since` or the ledger's first transaction, whichever is later
    (a young ledger's chart starts at its beginning). Past STEP_LIMIT
    transactions in the range, one point per UTC day's end instead (from the rollup).
    """
    with _connected(journal, conn) as c:
        first = first_time(journal, c)
        start = since if first is None else max(since or first, first)
        if start is None or start >= until:
            return []
        now = [0, 0, 0]
        for (account,), amount in grouped(journal, since=None, until=start, by=("account",), conn=c).items():
            _add(now, account, amount)
        points = [Point(start, *now)]
        sql = journal.sql
        cur = cursor(c)
        cur.execute(sql.q("SELECT COUNT(*) FROM ledger_txn WHERE time >= ? AND time < ?"), (sql.ts(start), sql.ts(until)))
        if int(cur.fetchone()[0]) <= STEP_LIMIT:
            cur.execute(
                sql.q(f"SELECT t.time, SUM(CASE WHEN {_BALANCE} THEN p.amount ELSE 0 END), "
                      f"SUM(CASE WHEN {_EXPENSE} THEN p.amount ELSE 0 END), "
                      f"SUM(CASE WHEN {_INCOME} THEN p.amount ELSE 0 END) FROM {sql.txn_postings} "
                      "WHERE p.commodity = ? AND t.time >= ? AND t.time < ? GROUP BY t.time ORDER BY t.time"),
                (COMMODITY, sql.ts(start), sql.ts(until)),
            )
            steps = [(sql.parse_ts(when), int(b), int(s), -int(i)) for when, b, s, i in cur.fetchall()]
        else:
            days: dict[str, list[int]] = {}
            for (day, account), amount in grouped(journal, since=start, until=until, by=("day", "account"), conn=c).items():
                _add(days.setdefault(day, [0, 0, 0]), account, amount)
            steps = [(min(midnight(date.fromisoformat(day) + timedelta(days=1)), until), *d)
                     for day, d in sorted(days.items())]
    for when, *delta in steps:
        if not any(delta):
            continue
        now = [a + b for a, b in zip(now, delta)]
        if points[-1].at == when:
            points[-1] = Point(when, *now)
        else:
            points.append(Point(when, *now))
    if points[-1].at != until:
        points.append(Point(until, *now))
    return points


@dataclass(frozen=True)
class Event:
    """Something a chart marks: a deposit or a tip (ucr in; a reversal is negative), a pause or a resume (0)."""

    at: datetime
    kind: str  # one of EVENT_KINDS
    amount: int = 0


DEPOSIT, TIP, PAUSE, RESUME = "deposit", "tip", "pause", "resume"
EVENT_KINDS = (DEPOSIT, TIP, PAUSE, RESUME)


def event_label(e: Event) -> str:
    """How both charts name an event: "tip +0.6", "pause"."""
    return f"{e.kind} {'+' if e.amount > 0 else ''}{format_credits(e.amount)}" if e.amount else e.kind


def funding_events(
    journal: Journal, *, since: datetime | None = None, until: datetime, conn: Connection | None = None
) -> list[Event]:
    """Deposits (from equity:opening) and tips (income:tips) in [since, until), one per transaction."""
    sql = journal.sql
    where, args = "p.commodity = ? AND t.time < ?", [COMMODITY, sql.ts(until)]
    if since is not None:
        where, args = where + " AND t.time >= ?", [*args, sql.ts(since)]
    with _connected(journal, conn) as c:
        cur = cursor(c)
        cur.execute(
            sql.q(f"SELECT t.id, t.time, p.account, SUM(p.amount) FROM {sql.txn_postings} "
                  f"WHERE {where} AND {_FUNDING} GROUP BY t.id, t.time, p.account ORDER BY t.time, t.id"),
            tuple(args),
        )
        rows = cur.fetchall()
    return [Event(sql.parse_ts(when), TIP if under(account, TIPS) else DEPOSIT, -int(amount))
            for _, when, account, amount in rows if int(amount)]


def pause_events(points: Sequence[Point], min_balance: int, resume_balance: int) -> list[Event]:
    """Where the balance crosses the budget's thresholds: paused under min_balance until back at resume_balance."""
    out: list[Event] = []
    paused = bool(points) and points[0].balance < min_balance  # the state the range starts in: no event
    for p in points[1:]:
        if not paused and p.balance < min_balance:
            paused = True
            out.append(Event(p.at, PAUSE))
        elif paused and p.balance >= resume_balance:
            paused = False
            out.append(Event(p.at, RESUME))
    return out


def money_story(
    journal: Journal,
    *,
    since: datetime | None = None,
    until: datetime,
    min_balance: int | None = None,
    resume_balance: int | None = None,
) -> tuple[list[Point], list[Event]]:
    """The money series and its events (funding; pauses and resumes when thresholds are given), time-ordered."""
    with journal.engine.connect() as c:
        points = money_series(journal, since=since, until=until, conn=c)
        start = points[0].at if points else since
        events = funding_events(journal, since=start, until=until, conn=c) if points else []
    if min_balance is not None and resume_balance is not None:
        events += pause_events(points, min_balance, resume_balance)
    events.sort(key=lambda e: (e.at, EVENT_KINDS.index(e.kind)))
    return points, events


# -- burn and runway ---------------------------------------------------------------------


@dataclass(frozen=True)
class Burn:
    """Spend per day over the trailing window; net subtracts income (negative: earning)."""

    per_day: int
    net_per_day: int
    window_days: int


@dataclass(frozen=True)
class Runway:
    """Days the available balance lasts at the trailing burn (None: nothing spent), and why it may be rough."""

    days: float | None
    burn: Burn
    note: str = ""  # "" when the figure stands on a full window of history


def runway(
    journal: Journal,
    budget: Budget,
    *,
    now: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    available: int | None = None,
    conn: Connection | None = None,
) -> Runway:
    """The runway at `now` (the budget's clock by default) of `available` (the budget's, by default)."""
    now = now or budget.clock()
    if available is None:
        available = budget.snapshot().available
    start = now - timedelta(days=window_days)
    with _connected(journal, conn) as c:
        sums = grouped(journal, since=start, until=now + JUST_AFTER, by=("account",),
                       where=f"({IS_EXPENSE} OR {IS_INCOME})", conn=c)
        first = first_time(journal, c)
    spent = sum(v for (a,), v in sums.items() if is_expense(a))
    earned = -sum(v for (a,), v in sums.items() if is_income(a))
    seconds, note = window_days * 86_400, ""
    if first is not None and first > start:
        age = now - first
        seconds = max(int(age.total_seconds()), 86_400)  # a young ledger: its own age, at least a day
        if age < MIN_HISTORY:
            note = (f"only {age.total_seconds() / 3600:.1f} h of ledger history: the burn is averaged "
                    "over a whole day, so the runway is a rough guess")
    per_day = Fraction(spent * 86_400, seconds)
    net_per_day = Fraction((spent - earned) * 86_400, seconds)
    burn = Burn(int(per_day), int(net_per_day), window_days)
    if per_day <= 0:
        return Runway(None, burn, f"nothing spent in the last {window_days} days")
    return Runway(round(float(Fraction(max(available, 0)) / per_day), 2), burn, note)


def runway_days(journal: Journal, budget: Budget, *, now: datetime | None = None,
                window_days: int = DEFAULT_WINDOW_DAYS, available: int | None = None) -> float | None:
    """Days until available is spent at the trailing burn rate; None when nothing is burnt."""
    return runway(journal, budget, now=now, window_days=window_days, available=available).days


# -- unit economics ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnitEconomics:
    """What a published article cost and earned over a window, in integer ucr (0 when none was published)."""

    articles: int
    cost_mean: int
    cost_p90: int
    income_mean: int


def nearest_rank(values: Sequence[int], pct: int) -> int:
    """The pct-th percentile by nearest rank: the ceil(pct/100 * n)-th smallest value (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(-(-pct * len(ordered) // 100), 1)
    return ordered[rank - 1]


def _mean(total: int, n: int) -> int:
    """total / n rounded to the nearest integer (halves up), in integers only."""
    return (2 * total + n) // (2 * n) if n else 0


def unit_economics_of(
    tasks: Mapping[str, tuple[int, int, str]], posts_of: Mapping[str, Iterable[str]] | None = None
) -> UnitEconomics:
    """Cost per published article and income per article from {task: (cost, earnings, booked post ids)}."""
    made = posts_of or {}
    articles = [(cost, earned) for task, (cost, earned, posts) in tasks.items() if posts or any(made.get(task, ()))]
    costs = [cost for cost, _ in articles]
    n = len(articles)
    return UnitEconomics(n, _mean(sum(costs), n), nearest_rank(costs, 90), _mean(sum(e for _, e in articles), n))


def unit_economics(
    journal: Journal,
    *,
    since: datetime | None,
    until: datetime,
    posts_of: Mapping[str, Iterable[str]] | None = None,
    conn: Connection | None = None,
) -> UnitEconomics:
    """Cost per published article (mean, p90) and income per article over since <= time < until.

    `posts_of`: task id -> the posts it made (the publishers' outbox), so an article counts before it earns.
    """
    with _connected(journal, conn) as c:
        tasks = task_totals(journal, since=since, until=until, conn=c)
    return unit_economics_of(tasks, posts_of)


# -- paid reads: what they brought in, and how many an article needs to pay for itself -------------


@dataclass(frozen=True)
class ReadIncome:
    """Paid reads of one kind over a window: how many (net of reorg reversals) and the ucr they brought."""

    count: int
    credits: int


def reads_by_kind(
    journal: Journal, *, since: datetime | None, until: datetime | None, conn: Connection | None = None
) -> dict[str, ReadIncome]:
    """{kind: ReadIncome} of income:reads:<kind> postings with since <= time < until (a reversal counts -1)."""
    sql = journal.sql
    window, window_params = sql.window(since, until)
    cond = [sql.under(READS, "p.account"), "p.commodity = ?", *window]  # an index search on SQLite
    params = [COMMODITY, *window_params]
    with _connected(journal, conn) as c:
        cur = cursor(c)
        cur.execute(sql.q(
            "SELECT p.account, SUM(CASE WHEN p.amount < 0 THEN 1 WHEN p.amount > 0 THEN -1 ELSE 0 END), "
            f"SUM(p.amount) FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id WHERE {' AND '.join(cond)} "
            "GROUP BY p.account ORDER BY p.account"), tuple(params))
        rows = cur.fetchall()
    return {leaf(account, READS): ReadIncome(int(count), -int(amount)) for account, count, amount in rows}


@dataclass(frozen=True)
class BreakEven:
    """Article reads a published article needs to pay for its mean cost; None with the reason when unknown."""

    reads: int | None
    price: int | None  # ucr per article read ([x402] price_article); None when paid reads are off
    reason: str = ""


def break_even(economics: UnitEconomics, price: int | None) -> BreakEven:
    """ceil(mean cost per published article / price of an article read)."""
    if price is None:
        return BreakEven(None, None, "paid reads are off (x402.enabled = false)")
    if price <= 0:
        return BreakEven(None, price, "article reads are free (x402.price_article = 0)")
    if economics.articles == 0:
        return BreakEven(None, price, "nothing was published in the range")
    return BreakEven(-(-economics.cost_mean // price), price)
