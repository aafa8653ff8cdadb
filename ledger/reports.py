"""What the money did: balances, income, spend, P&L per post, a period series, burn and runway.

    report = build_report(journal, budget, since=None, until=None, by="day", posts_of=None)
    report.to_json()      # the stable JSON below (every task's P&L)
    build_report(..., top=20)  # only the 20 most active tasks' rows, grouped in the database
    render_table(report)  # rich tables (`selfpub ledger report`: built with top=20)
    to_csv(report)        # one row per period (`--csv` / `--format csv`, `--period day|week|month`)

Summary figures (balance, available, reserved, liabilities, receivable,
paused) are as of `now`. Income, spend, posts and the series cover postings
with since <= time < until (until defaults to now; a `date` given as
`until` includes that whole day). Only the credit commodity (CR) is reported,
except gas: settlement pays it in the chain's native coin, booked in whole wei
(commodity WEI, an integer, never converted to credits or to a fraction).
Spend by agent and model, burn and runway are ledger.reads' figures (one
implementation, handed the caller's Budget).

JSON (`Report.to_json()`), version 1. Keys are stable: new keys may be
added, none renamed or removed without bumping "version". Every amount is an
integer of micro-credits (1 credit = 1,000,000 ucr), never a float.

    version       1
    generated_at  ISO 8601 UTC time the report was built ("now")
    commodity     "CR"
    unit          "ucr"
    since         ISO 8601 start of the range, or null for the ledger's beginning
    until         ISO 8601 end of the range (exclusive)
    by            "day" | "week" | "month": the series' period
    balance       assets:wallet (and sub-accounts)
    available     wallet - provider liabilities - open reservations
    reserved      open reservations
    liabilities   owed to compute providers (positive)
    receivable    engagement income accrued, not yet received
    income        {"total", "tips", "engagement": {platform: ucr}, "other": {account: ucr},
                   "reads": {kind: ucr}}   other: any income account but tips, engagement and reads
    spend         {"total", "by_agent": {agent: ucr}, "by_model": {model: ucr},
                   "other": {account: ucr}}   compute spend by agent and by model
                   (model "unknown" when none was recorded); other = non-compute expenses
    net           income.total - spend.total
    posts         [{"task_id", "post_id", "cost", "earnings", "net"}] sorted by task_id:
                   compute (and other expense) postings and income postings grouped by
                   the transaction's task_id; post_id lists the task's posts ("platform:id"),
                   comma-separated: the ones `posts_of` names (the publishers' outbox, handed
                   in by the CLI: compute is booked before a post exists, so its postings
                   cannot carry one) and any booked with income (engagement)
    gas           {commodity: amount} expenses:gas over the range in its own integer unit
                   ({"WEI": 21000000000000}); {} when no settlement paid gas
    funding       {"deposits", "tips", "series": [{"start", "end", "deposits", "tips"}]}:
                   credits that came in, over the range and per period of the series;
                   deposits = deposits and mints (equity:opening, less reversals)
    series        [{"start", "end", "spend", "income", "balance"}]: per period, start
                   and end (exclusive) as YYYY-MM-DD, balance = wallet at the period's end
    burn          {"per_day", "net_per_day", "window_days"}: expenses (net: minus income)
                   per day over the trailing window (shorter when the ledger is younger,
                   never under one day)
    runway_days   available / burn.per_day in days (2 decimals), null when nothing is burnt
    paused        whether the loop is paused
    pause_reason  why ("" when running)
    runway_note   "" or why runway_days is missing or rough (less than a day of history)
    per_article   {"published", "cost_mean", "cost_p90", "income_mean"}: unit economics of the
                   articles of the range (ledger.reads.unit_economics: a task with a post,
                   booked or in `posts_of`); mean rounded to the ucr, p90 by nearest rank; 0s
                   when none was published
    reads         paid reads over x402 in the range: {"count", "credits", "by_kind": {kind: {"count",
                   "credits"}}, "break_even": {"reads", "price", "reason"}}; count is net of reorg
                   reversals; break_even.reads = ceil(per_article.cost_mean / price of an article
                   read) (null, with the reason, when paid reads are off, free, or nothing was published)
    sustain       the sustain rule (ledger/sustain.py) over its own trailing window ending now,
                   not the report's range: {"enabled", "tier" (conserve | normal | expand),
                   "income", "cost", "ratio_per_mille" (income * 1000 // cost, null with no
                   cost), "window_hours", "expand_at_per_mille", "reason"}; null when not asked

CSV (`to_csv`): one row per period of the series, version 1. The columns,
in this order, are stable (new ones may be appended, none renamed, removed or
moved); money in credits with 6 decimals ("1.250000"), never rounded:

    start         first day of the period (YYYY-MM-DD, UTC)
    end           first day after it (exclusive)
    spend         expenses in the period (compute and other)
    income        income in the period (tips + engagement + other_income + reads)
    tips          income:tips
    engagement    income:engagement:* (every platform)
    other_income  any other income account (not tips, engagement or reads)
    deposits      deposits and mints (equity:opening; a reversal counts negative)
    net           income - spend
    balance       the wallet at the period's end
    reads         income:reads:* (paid reads over x402, every kind; a reorg reversal counts negative)
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from kernel.money import format_credits
from ledger.accounts import (
    COMPUTE,
    ENGAGEMENT,
    GAS,
    OPENING,
    READS,
    RECEIVABLE_ENGAGEMENT,
    TIPS,
    is_income,
    leaf,
    sql_under,
    under,
)
from ledger.budget import Budget, PauseState
from ledger.journal import Journal
from ledger.accounts import COMMODITY
from ledger.query import (
    IS_EXPENSE,
    IS_INCOME,
    PERIODS,
    Period,
    as_moment,
    bucket,
    grouped,
    period_series,
    task_summary,
    task_totals,
)
from ledger.reads import (
    DEFAULT_WINDOW_DAYS,
    JUST_AFTER,
    BreakEven,
    Burn,
    ReadIncome,
    UnitEconomics,
    _mean,
    break_even,
    reads_by_kind,
    runway,
    spend_by_agent,
    spend_by_model,
    unit_economics_of,
)
from ledger.sustain import SustainState, sustain_state

if TYPE_CHECKING:
    from config.settings import SustainSettings  # a type only: read-only commands may pass config.snapshot.Frozen

VERSION = 1
INCOME_OR_EXPENSES = f"({IS_EXPENSE} OR {IS_INCOME})"
INCOME_OR_FUNDING = f"({IS_INCOME} OR {sql_under(OPENING)})"
IS_GAS = sql_under(GAS)
CSV_COLUMNS = ("start", "end", "spend", "income", "tips", "engagement", "other_income", "deposits", "net", "balance",
               "reads")


@dataclass(frozen=True, slots=True)
class PostPnl:
    """Cost and earnings of one task (its article and short post), in ucr."""

    task_id: str
    post_id: str
    cost: int
    earnings: int

    @property
    def net(self) -> int:
        return self.earnings - self.cost


@dataclass(frozen=True, slots=True)
class PeriodIn:
    """What came in during one period of the series, in ucr: income by source, and deposits."""

    start: date
    tips: int = 0
    engagement: int = 0
    other_income: int = 0
    deposits: int = 0
    reads: int = 0


@dataclass(frozen=True)
class Report:
    """Everything `selfpub ledger report` shows; `to_json()` is the stable form."""

    generated_at: datetime
    since: datetime | None
    until: datetime
    by: str
    balance: int
    available: int
    reserved: int
    liabilities: int
    receivable: int
    tips: int
    engagement: dict[str, int]
    other_income: dict[str, int]
    spend_by_agent: dict[str, int]
    spend_by_model: dict[str, int]
    other_spend: dict[str, int]
    posts: list[PostPnl]
    series: list[Period]
    burn: Burn
    runway_days: float | None
    pause: PauseState = field(default_factory=lambda: PauseState(False, ""))
    sustain: SustainState | None = None  # the tier in force now and why (None: not asked for)
    runway_note: str = ""
    per_article: UnitEconomics = field(default_factory=lambda: UnitEconomics(0, 0, 0, 0))
    deposits: int = 0
    incoming: list[PeriodIn] = field(default_factory=list)  # one per period of `series`, same order
    gas: dict[str, int] = field(default_factory=dict)  # commodity -> integer smallest units (wei)
    tasks: int | None = None  # tasks in the range; more than len(posts) when built with `top` (table only)
    reads: dict[str, ReadIncome] = field(default_factory=dict)  # kind -> paid reads over x402
    break_even: BreakEven = field(default_factory=lambda: break_even(UnitEconomics(0, 0, 0, 0), None))

    def came_in(self, period: Period) -> PeriodIn:
        """What came in during one period of the series (zeros when nothing did)."""
        return next((p for p in self.incoming if p.start == period.start), PeriodIn(period.start))

    @property
    def income_total(self) -> int:
        return (self.tips + sum(self.engagement.values()) + sum(self.other_income.values())
                + sum(r.credits for r in self.reads.values()))

    @property
    def spend_total(self) -> int:
        return sum(self.spend_by_agent.values()) + sum(self.other_spend.values())

    @property
    def task_count(self) -> int:
        """How many tasks booked something in the range (`posts` may hold only the most active)."""
        return len(self.posts) if self.tasks is None else self.tasks

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data with the documented, stable keys."""
        if self.task_count != len(self.posts):
            raise ValueError("this report holds only the most active tasks (built with top=): build it without "
                             "`top` for JSON")
        return {
            "version": VERSION,
            "generated_at": self.generated_at.isoformat(),
            "commodity": COMMODITY,
            "unit": "ucr",
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "by": self.by,
            "balance": self.balance,
            "available": self.available,
            "reserved": self.reserved,
            "liabilities": self.liabilities,
            "receivable": self.receivable,
            "income": {
                "total": self.income_total,
                "tips": self.tips,
                "engagement": dict(self.engagement),
                "other": dict(self.other_income),
                "reads": {kind: r.credits for kind, r in self.reads.items()},
            },
            "spend": {
                "total": self.spend_total,
                "by_agent": dict(self.spend_by_agent),
                "by_model": dict(self.spend_by_model),
                "other": dict(self.other_spend),
            },
            "net": self.income_total - self.spend_total,
            "posts": [
                {"task_id": p.task_id, "post_id": p.post_id, "cost": p.cost, "earnings": p.earnings, "net": p.net}
                for p in self.posts
            ],
            "series": [
                {"start": s.start.isoformat(), "end": s.end.isoformat(), "spend": s.spend, "income": s.income,
                 "balance": s.balance}
                for s in self.series
            ],
            "burn": {"per_day": self.burn.per_day, "net_per_day": self.burn.net_per_day,
                     "window_days": self.burn.window_days},
            "runway_days": self.runway_days,
            "paused": self.pause.paused,
            "pause_reason": self.pause.reason,
            "runway_note": self.runway_note,
            "sustain": self.sustain.to_dict() if self.sustain is not None else None,
            "gas": dict(self.gas),
            "funding": {
                "deposits": self.deposits,
                "tips": self.tips,
                "series": [
                    {"start": s.start.isoformat(), "end": s.end.isoformat(), "deposits": self.came_in(s).deposits,
                     "tips": self.came_in(s).tips}
                    for s in self.series
                ],
            },
            "per_article": {"published": self.per_article.articles, "cost_mean": self.per_article.cost_mean,
                            "cost_p90": self.per_article.cost_p90, "income_mean": self.per_article.income_mean},
            "reads": {
                "count": sum(r.count for r in self.reads.values()),
                "credits": sum(r.credits for r in self.reads.values()),
                "by_kind": {kind: {"count": r.count, "credits": r.credits} for kind, r in self.reads.items()},
                "break_even": {"reads": self.break_even.reads, "price": self.break_even.price,
                               "reason": self.break_even.reason},
            },
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON document (keys documented in this module)."""
        return json.dumps(self.to_dict(), indent=indent)


# -- building ------------------------------------------------------------------------


def build_report(
    journal: Journal,
    budget: Budget,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    by: str = "day",
    now: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    sustain: SustainSettings | None = None,
    posts_of: Mapping[str, Iterable[str]] | None = None,
    read_price: int | None = None,
    top: int | None = None,
) -> Report:
    """Build the report over [since, until) (see the module docstring for what each figure means).

    `posts_of`: task id -> the posts it made ("platform:id"), from the publishers' outbox.
    `top`: keep only the `top` most active tasks in `posts` (the table's P&L), grouped in the database;
    the task count and cost per article still cover every task. JSON needs every task: build without it.
    `read_price`: ucr per article read ([x402] price_article), None when paid reads are off.
    """
    if by not in PERIODS:
        raise ValueError(f"by must be one of {', '.join(PERIODS)}, got {by!r}")
    now = as_moment(now) or budget.clock()
    start = as_moment(since)
    end = as_moment(until, end=True) or now + JUST_AFTER
    snap = budget.snapshot()
    with journal.engine.connect() as conn:
        receivable = journal.balance(RECEIVABLE_ENGAGEMENT, conn=conn)
        series = period_series(journal, since=start, until=end, by=by, conn=conn)
        accounts = grouped(journal, since=start, until=end, by=("account",), where=INCOME_OR_EXPENSES, conn=conn)
        daily_in = grouped(journal, since=start, until=end, by=("day", "account"), where=INCOME_OR_FUNDING, conn=conn)
        by_agent = spend_by_agent(journal, since=start, until=end, conn=conn)
        by_model = spend_by_model(journal, since=start, until=end, conn=conn)
        made = posts_of or {}
        if top is None:
            tasks = task_totals(journal, since=start, until=end, conn=conn)
        else:
            summary = task_summary(journal, since=start, until=end, top=top, conn=conn,
                                   made=sorted(t for t, keys in made.items() if any(keys)))
        left = runway(journal, budget, now=now, window_days=window_days, available=snap.available, conn=conn)
        gas = {}
        for commodity in journal.commodities():
            if commodity != COMMODITY:
                spent = grouped(journal, since=start, until=end, by=(), where=IS_GAS, commodity=commodity, conn=conn)
                if spent.get((), 0):
                    gas[commodity] = spent[()]
        tier = sustain_state(journal, sustain, now=now, conn=conn) if sustain is not None else None
        reads = reads_by_kind(journal, since=start, until=end, conn=conn)

    tips, engagement, other_income, other_spend = 0, {}, {}, {}
    for (account,), amount in sorted(accounts.items()):
        if account == TIPS:
            tips = -amount
        elif under(account, ENGAGEMENT):
            engagement[leaf(account, ENGAGEMENT)] = -amount
        elif under(account, READS):
            continue  # in `reads`, with their count
        elif is_income(account):
            other_income[account] = -amount
        elif not under(account, COMPUTE):
            other_spend[account] = amount

    if top is None:
        posts = [
            PostPnl(task_id, _post_ids(post_ids, made.get(task_id, ())), cost, earned)
            for task_id, (cost, earned, post_ids) in sorted(tasks.items())
        ]
        per_article, task_count = unit_economics_of(tasks, posts_of), None
    else:
        posts = [PostPnl(t, _post_ids(post_ids, made.get(t, ())), cost, earned)
                 for t, cost, earned, post_ids in sorted(summary.top)]
        n = summary.articles
        per_article = UnitEconomics(n, _mean(summary.cost_sum, n), summary.cost_p90, _mean(summary.earnings_sum, n))
        task_count = summary.tasks
    incoming = _incoming(daily_in, by)
    return Report(
        generated_at=now, since=start, until=now if until is None else end, by=by,
        balance=snap.wallet, available=snap.available, reserved=snap.reserved, liabilities=snap.liabilities,
        receivable=receivable, tips=tips, engagement=engagement, other_income=other_income,
        spend_by_agent=by_agent, spend_by_model=by_model, other_spend=other_spend, posts=posts, series=series,
        burn=left.burn, runway_days=left.days, runway_note=left.note, pause=snap.pause, sustain=tier,
        deposits=sum(p.deposits for p in incoming), incoming=incoming, gas=gas,
        per_article=per_article, reads=reads, break_even=break_even(per_article, read_price), tasks=task_count,
    )


def _post_ids(booked: str, made: Iterable[str]) -> str:
    """The union of the post ids booked with a task's income and the ones it made, sorted, comma-separated."""
    if not made:
        return booked  # already sorted and distinct (ledger.query.task_totals): most of 50,000 tasks
    return ",".join(sorted({p for p in booked.split(",") if p} | {p for p in made if p}))


def _incoming(daily: Mapping[tuple, int], by: str) -> list[PeriodIn]:
    """Income by source and deposits per period (sign flipped: money in is positive)."""
    sums: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (day, account), amount in daily.items():
        row = sums[bucket(date.fromisoformat(day), by)]
        if account == TIPS:
            row["tips"] -= amount
        elif under(account, ENGAGEMENT):
            row["engagement"] -= amount
        elif under(account, OPENING):
            row["deposits"] -= amount
        elif under(account, READS):
            row["reads"] -= amount
        else:
            row["other_income"] -= amount
    return [PeriodIn(start, **values) for start, values in sorted(sums.items())]


# -- rendering -----------------------------------------------------------------------


def to_csv(report: Report) -> str:
    """The report as CSV, one row per period of its series (columns: CSV_COLUMNS, documented above)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    c = format_credits
    for s in report.series:
        got = report.came_in(s)
        w.writerow([
            s.start.isoformat(), s.end.isoformat(), c(s.spend), c(s.income), c(got.tips), c(got.engagement),
            c(got.other_income), c(got.deposits), c(s.income - s.spend), c(s.balance), c(got.reads),
        ])
    return out.getvalue()


def render_table(report: Report, console: Any = None, *, posts: int = 20, periods: int = 31) -> None:
    """Print the report as rich tables (the most active `posts`, the latest `periods`)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    c = format_credits

    def money_table(title: str, label: str, rows: dict[str, int]) -> Table:
        t = Table(title=title, title_justify="left")
        t.add_column(label)
        t.add_column("credits", justify="right")
        for key, amount in rows.items():
            t.add_row(key, c(amount))
        return t

    span = f"{report.since.date() if report.since else 'start'} .. {report.until:%Y-%m-%d %H:%M} UTC"
    summary = Table(title="selfpub ledger", caption=span, title_justify="left", show_header=False)
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    status = f"[red]paused[/]: {report.pause.reason}" if report.pause.paused else "[green]running[/]"
    for name, value in (
        ("balance (wallet)", c(report.balance)),
        ("available", c(report.available)),
        ("reserved", c(report.reserved)),
        ("owed to providers", c(report.liabilities)),
        ("engagement receivable", c(report.receivable)),
        ("income", c(report.income_total)),
        ("spend", c(report.spend_total)),
        ("net", c(report.income_total - report.spend_total)),
        (f"burn per day ({report.burn.window_days}d)", c(report.burn.per_day)),
        ("net burn per day", c(report.burn.net_per_day)),
        *((f"gas ({commodity})", str(amount)) for commodity, amount in report.gas.items()),
        ("articles published", str(report.per_article.articles)),
        ("cost per article (mean / p90)", f"{c(report.per_article.cost_mean)} / {c(report.per_article.cost_p90)}"),
        ("income per article (mean)", c(report.per_article.income_mean)),
        ("paid reads", str(sum(r.count for r in report.reads.values()))),
        ("reads to break even per article", str(report.break_even.reads) if report.break_even.reads is not None
         else f"- ({report.break_even.reason})"),
        ("runway", ("-" if report.runway_days is None else f"{report.runway_days:.2f} days")
         + (f" ({report.runway_note})" if report.runway_note else "")),
        ("sustain", report.sustain.reason if report.sustain is not None else "-"),
        ("status", status),
    ):
        summary.add_row(name, value)
    console.print(summary)
    income = {"tips": report.tips, **{f"engagement:{k}": v for k, v in report.engagement.items()}}
    income.update({f"reads:{kind} ({r.count} reads)": r.credits for kind, r in report.reads.items()})
    income.update(report.other_income)
    console.print(money_table("Income by source", "source", income))
    console.print(money_table("Spend by agent", "agent", {**report.spend_by_agent, **report.other_spend}))
    console.print(money_table("Spend by model", "model", report.spend_by_model))

    pnl = Table(title="P&L per post", title_justify="left")
    for col in ("task", "post", "cost", "earnings", "net"):
        pnl.add_column(col, justify="left" if col in ("task", "post") else "right")
    active = heapq.nsmallest(posts, report.posts, key=lambda p: (-(p.cost + p.earnings), p.task_id))
    for p in active:
        net = c(p.net)
        pnl.add_row(p.task_id, p.post_id or "-", c(p.cost), c(p.earnings), f"[red]{net}[/]" if p.net < 0 else net)
    if report.task_count > len(active):
        pnl.caption = f"the {len(active)} most active of {report.task_count} tasks; all in --format json"
    console.print(pnl)

    funding = Table(title="Funding", title_justify="left")
    for col, justify in (("from", "left"), ("deposits", "right"), ("tips", "right")):
        funding.add_column(col, justify=justify)  # type: ignore[arg-type]
    came = [(s, report.came_in(s)) for s in report.series[-periods:]]
    for s, got in came:
        if got.deposits or got.tips:
            funding.add_row(s.start.isoformat(), c(got.deposits), c(got.tips))
    funding.add_row("total", c(report.deposits), c(report.tips), style="bold")
    console.print(funding)

    series = Table(title=f"By {report.by}", title_justify="left")
    for col, justify in (("from", "left"), ("spend", "right"), ("income", "right"), ("balance at end", "right")):
        series.add_column(col, justify=justify)  # type: ignore[arg-type]
    shown = report.series[-periods:]
    for s in shown:
        series.add_row(s.start.isoformat(), c(s.spend), c(s.income), c(s.balance))
    if len(report.series) > len(shown):
        series.caption = f"the last {len(shown)} of {len(report.series)} periods; all in --format json or csv"
    console.print(series)
