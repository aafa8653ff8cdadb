"""8 processes reserving against one budget never overspend (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import text

from config.db import make_engine
from ledger import Journal, compute_account
from ledger.budget import cycle_key, day_key
from ledger.funding import deposit
from tests.ledger import workers

PROCESSES = 8
HOLD = 20_000  # ucr reserved per call; the actual is 1..HOLD

SCENARIOS = {
    # The money runs out first: spend must stay within the funds.
    "funds": dict(funded=3_000_000, settings={"daily_cap": "1000", "per_cycle_cap": "1000", "min_balance": "0",
                                              "resume_balance": "0"}),
    # The daily cap binds first: spend must stay within the cap.
    "daily_cap": dict(funded=50_000_000, settings={"daily_cap": "2", "per_cycle_cap": "1000", "min_balance": "0",
                                                   "resume_balance": "0"}),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_eight_processes_never_overspend(db_url: str, scenario: str) -> None:
    funded, settings = SCENARIOS[scenario]["funded"], SCENARIOS[scenario]["settings"]
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, funded, idempotency_key="fund")

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    began = time.monotonic()
    with ProcessPoolExecutor(PROCESSES, mp_context=ctx, initializer=workers.init, initargs=(start,)) as pool:
        futures = [pool.submit(workers.hammer, w, db_url, settings, HOLD, 20.0) for w in range(PROCESSES)]
        time.sleep(0.5)  # let the workers import and connect
        start.set()
        reports = [f.result(timeout=60) for f in futures]
    elapsed = time.monotonic() - began

    assert all(not r.errors for r in reports), [r.errors for r in reports]
    committed = [c for r in reports for c in r.committed]
    spent = sum(actual for _, actual in committed)
    limit = funded if scenario == "funds" else 2_000_000

    # Every committed reservation is accounted for, once.
    with engine.connect() as conn:
        db_committed = dict(conn.execute(text(
            "SELECT id, actual FROM ledger_reservation WHERE status = 'committed'"
        )).all())
        compute_txns = conn.execute(text("SELECT COUNT(*) FROM ledger_txn WHERE kind = 'compute'")).scalar_one()
        still_open = conn.execute(text("SELECT COUNT(*) FROM ledger_reservation WHERE status = 'open'")).scalar_one()
        counters = dict(conn.execute(text("SELECT key, spent FROM ledger_spend_counter")).all())
    assert len(committed) == len(set(committed)) == len(db_committed) == compute_txns
    assert dict(committed) == db_committed
    assert still_open == 0

    # No overspend, and the budget was really exhausted (the test bit).
    total_compute = sum(journal.balance(compute_account(f"agent{a}")) for a in range(4))
    assert total_compute == spent
    assert spent <= limit
    assert spent > limit - PROCESSES * HOLD, (spent, limit)
    assert min(r.min_available for r in reports) >= 0
    assert journal.balance("liabilities:provider") == -spent
    assert counters[day_key(workers.FIXED_NOW)] == spent
    assert counters[cycle_key("cycle0")] + counters[cycle_key("cycle1")] == spent
    if scenario == "daily_cap":
        assert counters[day_key(workers.FIXED_NOW)] <= 2_000_000
    refusals = {k: sum(r.refusals.get(k, 0) for r in reports) for k in ("available", "daily_cap")}
    assert refusals["available" if scenario == "funds" else "daily_cap"] > 0
    assert journal.verify() == []
    assert elapsed < 45, f"took {elapsed:.1f}s"
    engine.dispose()
