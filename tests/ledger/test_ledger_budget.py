"""Budget: reservations, expiry after a crash, caps naming their limit, pause hysteresis, headroom."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pytest
from sqlalchemy import event, text

from ledger import Budget, BudgetExceeded, Journal, LedgerError, compute_account, provider_account
from ledger.funding import deposit
from tests.ledger.conftest import Clock

CR = 1_000_000


def fund(journal: Journal, ucr: int) -> None:
    deposit(journal, ucr)


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


def test_reserve_commit_posts_the_actual_cost_and_frees_the_rest(journal: Journal, make_budget) -> None:
    fund(journal, 10 * CR)
    budget: Budget = make_budget()
    hold = budget.reserve("writer", 300_000, model="m1", provider="embedded", cycle_id="c1", task_id="t1")
    snap = budget.snapshot()
    assert (snap.wallet, snap.reserved, snap.available) == (10 * CR, 300_000, 10 * CR - 300_000)
    txn = budget.commit(hold, 120_000, Usage(900, 40))
    assert txn is not None
    snap = budget.snapshot()
    assert (snap.liabilities, snap.reserved, snap.available) == (120_000, 0, 10 * CR - 120_000)
    assert snap.spent_today == 120_000
    assert journal.balance(compute_account("writer")) == 120_000
    assert journal.balance(provider_account("embedded")) == -120_000
    assert budget.cycle_spent("c1") == 120_000
    with journal.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT kind, model, task_id, input_tokens, output_tokens, memo FROM ledger_txn WHERE id = :id"
        ), {"id": txn}).one()
    assert tuple(row) == ("compute", "m1", "t1", 900, 40, "writer m1")
    # A second commit of the same hold (a retry after a crash) posts nothing more.
    assert budget.commit(hold, 120_000) == txn
    assert journal.balance(compute_account("writer")) == 120_000
    assert journal.verify() == []


def test_release_gives_the_hold_back_without_spending(journal: Journal, make_budget) -> None:
    fund(journal, CR)
    budget: Budget = make_budget(min_balance="0", resume_balance="0")
    hold = budget.reserve("critic", 400_000, cycle_id="c1")
    assert budget.available() == 600_000
    budget.release(hold)
    budget.release(hold)  # twice is harmless
    assert budget.available() == CR
    assert budget.open_reservations() == 0
    assert budget.headroom("c1") == CR
    assert journal.balances().get(compute_account("critic")) is None


def test_commit_records_a_cost_above_the_hold(journal: Journal, make_budget) -> None:
    fund(journal, CR)
    budget: Budget = make_budget()
    hold = budget.reserve("writer", 1_000, provider="embedded")
    budget.commit(hold, 1_500)
    assert budget.snapshot().liabilities == 1_500


def test_zero_actual_posts_no_transaction(journal: Journal, make_budget) -> None:
    fund(journal, CR)
    budget: Budget = make_budget()
    assert budget.commit(budget.reserve("writer", 10), 0) is None
    assert budget.snapshot().reserved == 0


@pytest.mark.parametrize("bad", [1.5, -1, True, "10"])
def test_amounts_must_be_non_negative_ints(journal: Journal, make_budget, bad: object) -> None:
    fund(journal, CR)
    budget: Budget = make_budget()
    with pytest.raises(LedgerError):
        budget.reserve("writer", bad)  # type: ignore[arg-type]
    hold = budget.reserve("writer", 10)
    with pytest.raises(LedgerError):
        budget.commit(hold, bad)  # type: ignore[arg-type]


# -- caps and limits name themselves -------------------------------------------------


def test_available_limit_counts_open_reservations_and_the_reserve(journal: Journal, make_budget) -> None:
    fund(journal, 2 * CR)
    budget: Budget = make_budget(reserve="0.5")
    budget.reserve("writer", CR)
    assert budget.headroom() == CR // 2
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("research", CR // 2 + 1)
    assert (err.value.limit, err.value.needed, err.value.remaining, err.value.agent) == (
        "available", CR // 2 + 1, CR // 2, "research"
    )
    assert "'available'" in str(err.value) and "research" in str(err.value)
    budget.reserve("research", CR // 2)  # exactly the headroom is fine


def test_daily_cap_counts_spent_and_held_and_resets_the_next_utc_day(journal: Journal, make_budget, clock: Clock) -> None:
    fund(journal, 100 * CR)
    budget: Budget = make_budget(daily_cap="1", per_cycle_cap="10")
    budget.commit(budget.reserve("writer", 600_000), 500_000)
    budget.reserve("writer", 300_000)  # held, still counts
    assert budget.headroom() == 200_000
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("writer", 200_001)
    assert err.value.limit == "daily_cap" and err.value.remaining == 200_000
    clock.advance(days=1)
    assert budget.headroom() == CR
    budget.reserve("writer", CR)


def test_per_cycle_cap_applies_per_cycle(journal: Journal, make_budget) -> None:
    fund(journal, 100 * CR)
    budget: Budget = make_budget(daily_cap="50", per_cycle_cap="1")
    hold = budget.reserve("writer", 700_000, cycle_id="c1")
    budget.commit(hold, 700_000)
    assert budget.headroom("c1") == 300_000
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("critic", 400_000, cycle_id="c1")
    assert err.value.limit == "per_cycle_cap" and err.value.remaining == 300_000 and err.value.agent == "critic"
    budget.reserve("critic", 400_000, cycle_id="c2")
    budget.reserve("critic", 400_000)  # no cycle: only the other limits apply
    assert budget.cycle_spent("c1") == 700_000 and budget.cycle_spent("c2") == 0


def test_the_tightest_limit_is_the_one_named(journal: Journal, make_budget) -> None:
    fund(journal, 3 * CR)
    budget: Budget = make_budget(daily_cap="2", per_cycle_cap="1", min_balance="0", resume_balance="0")
    budget.reserve("writer", 900_000, cycle_id="c1")
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("writer", 200_000, cycle_id="c1")
    assert err.value.limit == "per_cycle_cap"
    budget.reserve("writer", 1_000_000, cycle_id="c2")
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("writer", 200_000, cycle_id="c3")
    assert err.value.limit == "daily_cap" and err.value.remaining == 100_000


# -- reservations that outlive a crash expire --------------------------------------------


def test_reservations_left_by_a_crashed_process_expire_after_the_ttl(journal: Journal, make_budget, clock: Clock) -> None:
    fund(journal, 2 * CR)
    crashed: Budget = make_budget(reservation_ttl_seconds=60, daily_cap="10", per_cycle_cap="10")
    crashed.reserve("writer", 1_500_000, cycle_id="c1")  # the process dies before commit or release
    restarted: Budget = make_budget(reservation_ttl_seconds=60, daily_cap="10", per_cycle_cap="10")
    assert restarted.available() == 500_000
    with pytest.raises(BudgetExceeded):
        restarted.reserve("writer", CR)
    clock.advance(seconds=60)
    assert restarted.expire_stale() == 0  # not older than the TTL yet
    clock.advance(seconds=1)
    # The next reservation notices and expires the stale hold by itself.
    restarted.reserve("writer", CR, cycle_id="c1")
    assert restarted.open_reservations() == 1
    assert restarted.available() == CR
    assert restarted.snapshot().spent_today == CR  # the expired hold no longer counts against the day
    with journal.engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM ledger_reservation ORDER BY id")).scalars().all()
    assert statuses == ["expired", "open"]


def test_expire_stale_returns_how_many(journal: Journal, make_budget, clock: Clock) -> None:
    fund(journal, 2 * CR)
    budget: Budget = make_budget(reservation_ttl_seconds=10)
    budget.reserve("writer", 10)
    budget.reserve("critic", 20)
    clock.advance(seconds=11)
    assert budget.expire_stale() == 2
    assert budget.snapshot().reserved == 0


def test_a_late_commit_of_an_expired_hold_still_records_the_cost(journal: Journal, make_budget, clock: Clock) -> None:
    fund(journal, 2 * CR)
    budget: Budget = make_budget(reservation_ttl_seconds=10)
    hold = budget.reserve("writer", 50_000, provider="embedded", cycle_id="c1")
    clock.advance(seconds=11)
    assert budget.expire_stale() == 1
    txn = budget.commit(hold, 40_000)  # the provider did the work: it is owed
    assert txn is not None
    snap = budget.snapshot()
    assert (snap.liabilities, snap.reserved, snap.spent_today) == (40_000, 0, 40_000)
    assert budget.cycle_spent("c1") == 40_000
    assert budget.commit(hold, 40_000) == txn


# -- pause with hysteresis ---------------------------------------------------------------


def test_pause_below_min_stays_paused_between_min_and_resume_resumes_at_resume(
    journal: Journal, make_budget, clock: Clock
) -> None:
    budget: Budget = make_budget(min_balance="1", resume_balance="2")
    deposit(journal, 1_500_000)
    assert not budget.evaluate().paused  # above min, never paused: runs
    spend = budget.reserve("writer", 600_000, provider="embedded")
    budget.commit(spend, 600_000)  # available 0.9 < min 1.0
    state = budget.evaluate()
    assert state.paused and state.cause == "balance"
    assert "min_balance 1.000000" in state.reason and "resumes at 2.000000" in state.reason
    assert budget.pause_state() == state
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("writer", 1)
    assert err.value.limit == "paused" and budget.headroom() == 0
    clock.advance(hours=1)
    assert budget.evaluate() == state  # still below min: paused since then, not re-paused
    deposit(journal, 600_000)  # 1.5: between min and resume
    assert budget.evaluate() == state  # unchanged, same changed_at
    deposit(journal, 499_999)  # 1.999999: still short of resume
    assert budget.evaluate().paused
    deposit(journal, 1)  # exactly resume_balance
    resumed = budget.evaluate()
    assert not resumed.paused and resumed.reason == "" and resumed.changed_at is not None
    budget.reserve("writer", 1)


def test_a_forced_reason_pauses_whatever_the_balance_and_lifts_with_its_cause(journal: Journal, make_budget) -> None:
    budget: Budget = make_budget(min_balance="1", resume_balance="2")
    deposit(journal, 1_500_000)  # between min and resume
    state = budget.evaluate(extra_reason="chain data is 3h old (max 1h)")
    assert state.paused and state.cause == "forced" and state.reason == "chain data is 3h old (max 1h)"
    with pytest.raises(BudgetExceeded) as err:
        budget.reserve("writer", 1)
    assert err.value.limit == "paused"
    # The cause is gone: hysteresis is about the balance, so 1.5 >= min runs again.
    assert not budget.evaluate().paused


def test_pause_state_is_per_persona(journal: Journal, make_budget) -> None:
    deposit(journal, 500_000)
    a: Budget = make_budget("alice", min_balance="1", resume_balance="2")
    b: Budget = make_budget("bob", min_balance="0", resume_balance="0")
    assert a.evaluate().paused
    assert not b.evaluate().paused
    assert a.pause_state().paused and not b.pause_state().paused
    b.reserve("writer", 1)


def test_reserve_plus_commit_is_a_few_statements(tmp_path) -> None:  # noqa: ANN001
    """The hot path stays short: counted with SQLite's statement trace."""
    from kernel.db import make_engine
    from config.settings import BudgetSettings

    engine = make_engine(f"sqlite:///{tmp_path / 'count.db'}")
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, 100 * CR)
    budget = Budget(journal, BudgetSettings())
    budget.commit(budget.reserve("writer", 10, provider="p", cycle_id="c", task_id="t"), 5)  # warm caches
    statements: list[str] = []

    def trace(dbapi_conn: sqlite3.Connection, _record: object, _proxy: object) -> None:
        dbapi_conn.set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))

    event.listen(engine, "checkout", trace)
    hold = budget.reserve("writer", 10, provider="p", cycle_id="c", task_id="t")
    budget.commit(hold, 5)
    event.remove(engine, "checkout", trace)
    # reserve: BEGIN, read state, insert hold, counters, COMMIT;
    # commit: BEGIN, close hold, txn, postings, balances, rollup, task rollup, counters, COMMIT.
    assert statements == ["BEGIN", "SELECT", "INSERT", "INSERT", "COMMIT"] + ["BEGIN", "UPDATE"] + ["INSERT"] * 6 + [
        "COMMIT"
    ], statements
    engine.dispose()
