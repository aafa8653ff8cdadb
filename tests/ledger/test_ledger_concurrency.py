"""8 processes reserving against one budget never overspend (SQLite and the real PostgreSQL).

Day one the daily cap binds, day two the money runs out; every committed
reservation is counted on both sides (the workers' reports and the database).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

from sqlalchemy import text

from kernel.db import make_engine
from config.settings import BudgetSettings
from ledger import Budget, Journal, compute_account
from ledger.budget import cycle_key, day_key
from ledger.funding import deposit
from tests.ledger import workers

PROCESSES = 8
HOLD = 20_000  # ucr reserved per call; the actual is 1..HOLD
FUNDED = 8_000_000
DAILY_CAP = 5_000_000
SETTINGS = {"daily_cap": "5", "per_cycle_cap": "1000", "min_balance": "0", "resume_balance": "0"}


def test_eight_processes_never_overspend(db_url: str) -> None:
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, FUNDED, idempotency_key="fund")

    ctx = multiprocessing.get_context("spawn")
    start, next_day = ctx.Barrier(PROCESSES + 1), ctx.Barrier(PROCESSES)
    with ProcessPoolExecutor(PROCESSES, mp_context=ctx, initializer=workers.init, initargs=(start, next_day)) as pool:
        futures = [pool.submit(workers.hammer, w, db_url, SETTINGS, HOLD, 30.0) for w in range(PROCESSES)]
        start.wait(timeout=120)  # every worker imported, connected and ready
        began = time.monotonic()
        reports = [f.result(timeout=60) for f in futures]
        hammering = time.monotonic() - began
    print(f"{PROCESSES} processes, {sum(len(r.committed) for r in reports)} commits in {hammering:.2f}s")

    assert all(not r.errors for r in reports), [r.errors for r in reports]
    committed = [c for r in reports for c in r.committed]
    spent = sum(actual for _, actual, _ in committed)
    by_day = Counter()
    for _, actual, day in committed:
        by_day[day] += actual

    # Every committed reservation is in the database once, with the same actual.
    with engine.connect() as conn:
        db_committed = dict(conn.execute(text("SELECT id, actual FROM ledger_reservation WHERE status = 'committed'")).all())
        compute_txns = conn.execute(text("SELECT COUNT(*) FROM ledger_txn WHERE kind = 'compute'")).scalar_one()
        still_open = conn.execute(text("SELECT COUNT(*) FROM ledger_reservation WHERE status = 'open'")).scalar_one()
        counters = dict(conn.execute(text("SELECT key, spent FROM ledger_spend_counter")).all())
    assert len({rid for rid, _, _ in committed}) == len(committed) == len(db_committed) == compute_txns
    assert {rid: actual for rid, actual, _ in committed} == db_committed
    assert still_open == 0

    # No overspend: the funds and the daily cap both held, and both were reached (the test bit).
    day1, day2 = (day_key(d) for d in workers.DAYS)
    assert sum(journal.balance(compute_account(f"agent{a}")) for a in range(4)) == spent
    assert journal.balance("liabilities:provider") == -spent
    assert spent <= FUNDED
    assert spent > FUNDED - PROCESSES * HOLD, spent
    assert by_day[day1] == counters[day1] <= DAILY_CAP
    assert counters[day1] > DAILY_CAP - PROCESSES * HOLD
    assert by_day[day2] == counters[day2] == spent - counters[day1]
    assert counters[cycle_key("cycle0")] + counters[cycle_key("cycle1")] == spent
    assert min(r.min_available for r in reports) >= 0
    refusals = Counter()
    for r in reports:
        refusals.update(r.refusals)
    assert refusals["daily_cap"] > 0 and refusals["available"] > 0, refusals
    assert Budget(journal, BudgetSettings()).available() == FUNDED - spent >= 0
    assert journal.verify() == []
    assert hammering < 30, f"hammering took {hammering:.1f}s"
    engine.dispose()
