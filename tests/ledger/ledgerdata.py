"""A small ledger with every kind of transaction, and the report's figures recomputed the slow way."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import text

from config.settings import BudgetSettings
from ledger import (
    OPENING,
    RECEIVABLE_ENGAGEMENT,
    TIPS,
    WALLET,
    Budget,
    Entry,
    Journal,
    engagement_account,
    provider_account,
)
from tests.ledger.conftest import Clock

START = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)  # a Monday


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


def populate(journal: Journal, clock: Clock, days: int = 10) -> Budget:
    """Deposits, compute via the budget, engagement accruals, tips, a settlement, a fee, a reversal, ETH."""
    clock.now = START
    budget = Budget(journal, BudgetSettings(daily_cap="100", per_cycle_cap="100"), clock=clock)
    journal.post("deposit", [Entry(WALLET, 20_000_000), Entry(OPENING, -20_000_000)], idempotency_key="dep", time=START)
    agents = ("research", "writer", "critic")
    models = ("small", "large", None)
    n = 0
    for day in range(days):
        for call in range(4):
            clock.now = START + timedelta(days=day, hours=call * 5, minutes=7 * call)
            task = f"task-{day // 2}"
            hold = budget.reserve(agents[n % 3], 90_000, model=models[n % 3], provider="embedded",
                                  cycle_id=f"cycle-{day}", task_id=task)
            budget.commit(hold, 10_000 + 1_000 * n, Usage(100 + n, 10 + n))
            n += 1
        when = START + timedelta(days=day, hours=20)
        if day % 2 == 1:
            platform = "devto" if day % 4 == 1 else "bluesky"
            journal.post("engagement", [Entry(RECEIVABLE_ENGAGEMENT, 7_000 * day), Entry(engagement_account(platform), -7_000 * day)],
                         idempotency_key=f"eng-{day}", task_id=f"task-{day // 2}", post_id=f"{platform}:{day}", time=when)
        if day % 3 == 0:
            journal.post("tip", [Entry(WALLET, 3_000 + day), Entry(TIPS, -(3_000 + day))], idempotency_key=f"tip-{day}",
                         tx_hash=f"0x{day:064x}", time=when + timedelta(minutes=1))
    settle_at = START + timedelta(days=days // 2, hours=23)
    journal.post("settlement", [Entry(provider_account("embedded"), 50_000), Entry(WALLET, -50_000)],
                 idempotency_key="settle-1", time=settle_at)
    journal.post("fee", [Entry("expenses:fees:gas", 1_234), Entry(WALLET, -1_234)], idempotency_key="fee-1",
                 time=settle_at + timedelta(minutes=5))
    wrong = journal.post("tip", [Entry(WALLET, 999), Entry(TIPS, -999)], idempotency_key="tip-wrong",
                         time=settle_at + timedelta(minutes=6)).txn_id
    journal.reverse(wrong, idempotency_key="tip-wrong:reversal", memo="counted twice",
                    time=settle_at + timedelta(minutes=6, seconds=30))
    journal.post("swap", [Entry(WALLET, -5), Entry("equity:conversion", 5),
                          Entry("assets:wallet:eth", 3, "ETH"), Entry("equity:conversion", -3, "ETH")],
                 idempotency_key="swap", memo='a "quoted" memo; with a semicolon', time=settle_at + timedelta(minutes=7))
    clock.now = START + timedelta(days=days, hours=1)
    return budget


@dataclass(frozen=True)
class Row:
    time: datetime
    kind: str
    model: str | None
    task_id: str | None
    post_id: str | None
    account: str
    commodity: str
    amount: int


def rows(journal: Journal) -> list[Row]:
    """Every posting with its transaction's fields (the slow way, through SQLAlchemy)."""
    with journal.engine.connect() as conn:
        result = conn.execute(text(
            "SELECT t.time, t.kind, t.model, t.task_id, t.post_id, p.account, p.commodity, p.amount "
            "FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id"
        )).all()
    out = []
    for r in result:
        when = r[0] if isinstance(r[0], datetime) else datetime.fromisoformat(r[0])
        when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
        out.append(Row(when, *r[1:7], int(r[7])))
    return out


def expected(journal: Journal, since: datetime | None, until: datetime) -> dict:
    """The report's period figures recomputed from every posting."""
    income: dict[str, int] = defaultdict(int)
    agents: dict[str, int] = defaultdict(int)
    models: dict[str, int] = defaultdict(int)
    other: dict[str, int] = defaultdict(int)
    cost: dict[str, int] = defaultdict(int)
    earn: dict[str, int] = defaultdict(int)
    posts: dict[str, set] = defaultdict(set)
    by_day_spend: dict[date, int] = defaultdict(int)
    by_day_income: dict[date, int] = defaultdict(int)
    for r in rows(journal):
        if r.commodity != "CR" or (since and r.time < since) or r.time >= until:
            continue
        day = r.time.date()
        if r.account.startswith("income:"):
            income[r.account] -= r.amount
            by_day_income[day] -= r.amount
        if r.account.startswith("expenses:"):
            by_day_spend[day] += r.amount
            if r.account.startswith("expenses:compute:"):
                agents[r.account.removeprefix("expenses:compute:")] += r.amount
                models[r.model or "unknown"] += r.amount
            else:
                other[r.account] += r.amount
        if r.task_id and r.account.startswith(("income:", "expenses:")):
            if r.post_id:
                posts[r.task_id].add(r.post_id)
            if r.account.startswith("expenses:"):
                cost[r.task_id] += r.amount
            else:
                earn[r.task_id] -= r.amount
    tasks = sorted(set(cost) | set(earn))
    return {
        "tips": income.pop(TIPS, 0),
        "engagement": {a.removeprefix("income:engagement:"): v for a, v in sorted(income.items())
                       if a.startswith("income:engagement:")},
        "by_agent": dict(sorted(agents.items())),
        "by_model": dict(sorted(models.items())),
        "other_spend": dict(sorted(other.items())),
        "posts": [{"task_id": t, "post_id": ",".join(sorted(posts[t])), "cost": cost[t], "earnings": earn[t],
                   "net": earn[t] - cost[t]} for t in tasks],
        "spend_by_day": dict(by_day_spend),
        "income_by_day": dict(by_day_income),
    }


def wallet_at(journal: Journal, moment: datetime) -> int:
    """The wallet (and sub-accounts) in CR just before `moment`."""
    return sum(r.amount for r in rows(journal) if r.commodity == "CR" and r.time < moment
               and (r.account == WALLET or r.account.startswith(WALLET + ":")))
