"""Holds that outlive their call: the sent mark, expiry at the gate, worst-case booking and its correction.

Scenario 8 of issue 11 (budget side): a hold a killed process left must expire on time, at the gate,
so a deposit can resume the loop; and a hold whose request was sent is spent, not freed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ledger import Budget, Journal, compute_account, provider_account
from ledger.funding import deposit
from tests.ledger.conftest import Clock

CR = 1_000_000


def statuses(journal: Journal) -> list[str]:
    with journal.engine.connect() as conn:
        return list(conn.execute(text("SELECT status FROM ledger_reservation ORDER BY id")).scalars())


def spend(journal: Journal) -> int:
    return journal.balance("expenses:compute")


def test_scenario_8_a_stale_hold_expires_at_the_gate_and_a_deposit_resumes(
    journal: Journal, make_budget, clock: Clock
) -> None:
    deposit(journal, 1_500_000)
    budget: Budget = make_budget(min_balance="1", resume_balance="2", reservation_ttl_seconds=60)
    assert not budget.evaluate().paused
    # A process reserves 0.9 credits and is SIGKILLed before it sends anything.
    budget.reserve("writer", 900_000, provider="p")
    assert budget.evaluate().paused  # available 0.6 < min 1
    deposit(journal, CR)  # 2.5 in the wallet, 1.6 available while the dead hold lasts
    assert budget.evaluate().paused  # hysteresis: short of resume 2 while the hold is live
    clock.advance(seconds=61)
    # Nothing reserves while paused: the gate itself must expire the dead hold, then resume.
    state = budget.evaluate()
    assert not state.paused, state.reason
    assert budget.snapshot().reserved == 0 and budget.available() == 2_500_000
    assert statuses(journal) == ["expired"]
    assert spend(journal) == 0  # never sent: freed


def test_scenario_8_a_sent_hold_that_expires_is_booked_at_its_worst_case(
    journal: Journal, make_budget, clock: Clock
) -> None:
    deposit(journal, 10 * CR)
    budget: Budget = make_budget(reservation_ttl_seconds=60)
    hold = budget.reserve("writer", 300_000, model="m", provider="p", cycle_id="c1", task_id="t1")
    budget.mark_sent(hold)  # the request left; then the process died
    clock.advance(seconds=61)
    budget.evaluate()
    assert statuses(journal) == ["presumed"]
    assert spend(journal) == 300_000 and journal.balance(provider_account("p")) == -300_000
    snap = budget.snapshot()
    assert (snap.reserved, snap.liabilities, snap.spent_today) == (0, 300_000, 300_000)
    assert budget.cycle_spent("c1") == 300_000
    assert journal.verify() == []


def test_a_presumed_hold_is_corrected_when_the_usage_arrives(journal: Journal, make_budget, clock: Clock) -> None:
    deposit(journal, 10 * CR)
    budget: Budget = make_budget(reservation_ttl_seconds=60)
    hold = budget.reserve("writer", 300_000, model="m", provider="p", cycle_id="c1")
    budget.mark_sent(hold)
    first = budget.book_worst_case(hold)  # ambiguous: a timeout after the request was written
    assert spend(journal) == 300_000 and statuses(journal) == ["presumed"]
    assert budget.book_worst_case(hold) == first  # once
    fix = budget.commit(hold, 120_000)  # the usage became known after all
    assert fix is not None and fix != first
    assert spend(journal) == 120_000 and journal.balance(compute_account("writer")) == 120_000
    assert budget.cycle_spent("c1") == 120_000 and budget.snapshot().spent_today == 120_000
    assert statuses(journal) == ["committed"]
    assert budget.commit(hold, 120_000) == fix  # a retry posts nothing more
    assert spend(journal) == 120_000
    with journal.engine.connect() as conn:  # the ledger is append-only: the first booking stays, corrected
        amounts = conn.execute(text(
            "SELECT p.amount FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id "
            "WHERE p.account = 'expenses:compute:writer' ORDER BY t.id")).scalars().all()
    assert amounts == [300_000, -180_000]
    assert journal.verify() == []


def test_an_expired_sent_hold_is_corrected_by_a_late_commit(journal: Journal, make_budget, clock: Clock) -> None:
    deposit(journal, 10 * CR)
    budget: Budget = make_budget(reservation_ttl_seconds=60)
    hold = budget.reserve("writer", 50_000, provider="p")
    budget.mark_sent(hold)
    clock.advance(seconds=61)
    assert budget.expire_stale() == 1
    assert spend(journal) == 50_000
    budget.commit(hold, 70_000)  # more than held (a bad prompt estimate): still what it cost
    assert spend(journal) == 70_000 and budget.snapshot().liabilities == 70_000


def test_mark_sent_refuses_a_hold_that_is_no_longer_open(journal: Journal, make_budget, clock: Clock) -> None:
    from ledger.budget import HoldClosed

    deposit(journal, CR)
    budget: Budget = make_budget(reservation_ttl_seconds=60)
    hold = budget.reserve("writer", 10_000)
    clock.advance(seconds=61)
    budget.expire_stale()
    with pytest.raises(HoldClosed):
        budget.mark_sent(hold)  # too late: it was freed as unsent, so it must not be sent now
    released = budget.reserve("writer", 10_000)
    budget.release(released)
    with pytest.raises(HoldClosed):
        budget.mark_sent(released)


def test_release_and_unsent_expiry_free_the_hold(journal: Journal, make_budget, clock: Clock) -> None:
    deposit(journal, CR)
    budget: Budget = make_budget(reservation_ttl_seconds=60)
    budget.release(budget.reserve("writer", 10_000))
    budget.reserve("writer", 20_000)
    sent = budget.reserve("writer", 30_000)
    budget.mark_sent(sent)
    clock.advance(seconds=61)
    assert budget.expire_stale() == 2
    assert statuses(journal) == ["released", "expired", "presumed"]
    assert spend(journal) == 30_000 and budget.snapshot().reserved == 0


@pytest.mark.postgres
def test_a_hold_marked_sent_while_another_process_expires_it_is_booked_not_freed(pg_url: str) -> None:
    """PostgreSQL: the sweep re-checks the sent mark row by row, so a mark that commits under it wins."""
    import subprocess
    import sys
    import time

    from kernel.db import make_engine
    from config.settings import BudgetSettings
    from tests.conftest import REPO

    engine = make_engine(pg_url)
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, CR)
    budget = Budget(journal, BudgetSettings(reservation_ttl_seconds=1))
    hold = budget.reserve("writer", 40_000, provider="p")
    time.sleep(1.2)  # stale now; our mark_sent is about to commit
    with journal.writing() as w:  # mark_sent's own statement, its commit held back while the sweep starts
        w.cursor.execute("UPDATE ledger_reservation SET sent_at = now() WHERE id = %s AND status = 'open'", (hold.id,))
        assert w.cursor.rowcount == 1
        sweep = subprocess.Popen([sys.executable, "-m", "tests.ledger.hold_worker", pg_url, "1"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)  # the sweep is blocked on our row lock
        assert sweep.poll() is None, sweep.stderr.read().decode()[-2000:]
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip() == "1"
    assert statuses(journal) == ["presumed"]  # sent, so spent: never freed by a sweep that read it unsent
    assert spend(journal) == 40_000 and budget.snapshot().reserved == 0
    engine.dispose()
