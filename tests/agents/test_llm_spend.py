"""Spend is booked whatever becomes of a call after its request left (issue 11, scenarios 6 and 7).

An ambiguous outcome (timeout or reset after the request was written, a 5xx without usage) books the
reserved worst case; only a request that provably never left releases its hold; a billed reply whose
ledger write fails is retried and never released.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from agents.llm.calllog import ERROR, OK
from agents.llm import LLMUnavailable, cost, estimate_prompt_tokens
from config.settings import BudgetSettings
from ledger import Budget, BudgetExceeded
from tests.agents.conftest import FAKE_PRICE, agents_on
from tests.fakes.openai import Fault

MSG = [{"role": "user", "content": "Write one sentence about otters."}]
WORST = cost(FAKE_PRICE, estimate_prompt_tokens(MSG), 512)  # the writer's hold: prompt + 512 tokens


def spent(budget: Budget) -> int:
    return budget.journal.balance("expenses:compute")


@pytest.mark.parametrize("fault", [Fault.timeout(), Fault.reset(), Fault.status(500), Fault.status(504)],
                         ids=["timeout", "reset", "500", "504"])
async def test_scenario_6_a_call_lost_after_its_request_was_written_books_the_worst_case(
    make_llm, fake_openai, budget, call_log, fault
) -> None:
    fake_openai.fail(fault, times=2)
    with pytest.raises(LLMUnavailable):
        await make_llm(agents=agents_on(max_retries=1)).complete("writer", MSG, cycle_id="c6")
    # Two attempts, each its own reservation, each possibly generated and billed by the provider.
    assert len(fake_openai.chat_requests) == 2
    assert spent(budget) == 2 * WORST
    assert budget.journal.balance("liabilities:provider:fake") == -2 * WORST  # settlement sees it
    assert budget.cycle_spent("c6") == 2 * WORST and budget.snapshot().spent_today == 2 * WORST  # caps see it
    assert budget.open_reservations() == 0
    assert [r.cost for r in call_log.calls(cycle_id="c6")] == [WORST, WORST]


async def test_a_timeout_then_an_answer_books_the_worst_case_then_the_usage(make_llm, fake_openai, budget) -> None:
    fake_openai.fail(Fault.late(usage=(40, 30)))
    fake_openai.enqueue("ok", usage=(17, 9))
    done = await make_llm().complete("writer", MSG)
    assert done.text == "ok" and done.meta["attempts"] == 2
    billed = sum(cost(FAKE_PRICE, *u) for u in fake_openai.billed)
    assert spent(budget) == WORST + cost(FAKE_PRICE, 17, 9) >= billed


async def test_a_refused_connection_releases_its_hold(make_llm, fake_openai, budget, call_log) -> None:
    fake_openai.fail(Fault.refused())
    done = await make_llm().complete("writer", MSG, cycle_id="r")
    assert done.text == "ok"
    assert spent(budget) == done.cost == cost(FAKE_PRICE, 10, 5)  # the refused attempt cost nothing
    first, second = call_log.calls(cycle_id="r")
    assert (first.outcome, first.cost, first.error_class) == (ERROR, 0, "APIConnectionError")
    assert second.outcome == OK


async def test_a_rejection_before_generation_releases_its_hold(make_llm, fake_openai, budget) -> None:
    fake_openai.fail(Fault.status(429, retry_after=0))
    await make_llm().complete("writer", MSG)
    assert spent(budget) == cost(FAKE_PRICE, 10, 5)


async def test_retries_against_a_hung_endpoint_stop_at_the_cycle_cap(make_llm, fake_openai, journal) -> None:
    cap = 3 * WORST + WORST // 2
    budget = Budget(journal, BudgetSettings(per_cycle_cap=f"0.{cap:06d}"))
    fake_openai.fail(Fault.timeout(), times=50)
    llm = make_llm(agents=agents_on(max_retries=40), breaker_threshold=100)
    llm.budget = budget
    with pytest.raises(BudgetExceeded) as err:
        await llm.complete("writer", MSG, cycle_id="hung")
    assert err.value.limit == "per_cycle_cap"
    assert cap - WORST < spent(budget) <= cap  # every timeout was counted: the cap stopped the retries
    assert len(fake_openai.chat_requests) <= 5


def _locked() -> OperationalError:
    return OperationalError("UPDATE ledger_reservation", {}, sqlite3.OperationalError("database is locked"))


def _dropped() -> DBAPIError:
    return DBAPIError("UPDATE ledger_reservation", {}, Exception("server closed the connection"),
                      connection_invalidated=True)


@pytest.mark.parametrize("error", [_locked, _dropped], ids=["sqlite-busy", "pg-connection-dropped"])
async def test_scenario_7_a_billed_reply_whose_commit_fails_is_retried_not_released(
    make_llm, fake_openai, budget, monkeypatch, error
) -> None:
    real = budget.commit
    failures = [error(), error()]

    def flaky(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(budget, "commit", flaky)
    fake_openai.enqueue("billed", usage=(17, 9))
    done = await make_llm().complete("writer", MSG, cycle_id="c7")
    assert done.text == "billed" and done.meta["booked"] is True
    assert spent(budget) == cost(FAKE_PRICE, 17, 9) == done.cost
    assert budget.open_reservations() == 0 and budget.cycle_spent("c7") == done.cost


async def test_a_commit_that_keeps_failing_keeps_the_hold_and_books_it_later(make_llm, fake_openai, budget, monkeypatch) -> None:
    real = budget.commit
    monkeypatch.setattr(budget, "commit", lambda *a, **k: (_ for _ in ()).throw(_locked()))
    fake_openai.enqueue("billed", usage=(17, 9))
    llm = make_llm()
    done = await llm.complete("writer", MSG)
    assert done.text == "billed" and done.meta["booked"] is False
    assert budget.open_reservations() == 1 and budget.snapshot().reserved == WORST  # never freed
    assert spent(budget) == 0
    monkeypatch.setattr(budget, "commit", real)  # the database is back: the next call books the first
    await llm.complete("writer", MSG)
    assert spent(budget) == cost(FAKE_PRICE, 17, 9) + cost(FAKE_PRICE, 10, 5)
    assert budget.open_reservations() == 0


async def test_a_hold_whose_commit_never_lands_is_booked_at_its_worst_case_on_expiry(
    make_llm, fake_openai, journal, monkeypatch
) -> None:
    from tests.ledger.conftest import Clock

    clock = Clock()
    budget = Budget(journal, BudgetSettings(reservation_ttl_seconds=60), clock=clock)
    monkeypatch.setattr(budget, "commit", lambda *a, **k: (_ for _ in ()).throw(_locked()))
    fake_openai.enqueue("billed", usage=(17, 9))
    llm = make_llm()
    llm.budget = budget
    await llm.complete("writer", MSG)
    del llm  # the process dies with the commit still pending
    clock.advance(seconds=61)
    budget.evaluate()
    assert budget.open_reservations() == 0
    assert spent(budget) == WORST >= cost(FAKE_PRICE, 17, 9)


@pytest.mark.postgres
async def test_scenario_7_a_real_postgres_connection_killed_mid_commit_is_retried(pg_url, fake_openai, monkeypatch) -> None:
    """The ledger write's own PostgreSQL backend is terminated halfway through the commit; the retry books it."""
    from agents.llm.calllog import CallLog
    from agents.llm import MeteredLLM
    from kernel.db import make_engine
    from ledger import Journal
    from ledger.funding import deposit
    from tests.agents.conftest import FAKE_MODEL, FAKE_URL

    engine = make_engine(pg_url)
    admin = make_engine(pg_url, pool=False)
    journal = Journal(engine)
    journal.migrate()
    CallLog(engine).migrate()
    deposit(journal, 10_000_000)
    budget = Budget(journal, BudgetSettings())
    real_post = journal.post_cursor
    killed: list[int] = []

    def post_on_a_dying_connection(w, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if not killed:
            w.cursor.execute("SELECT pg_backend_pid()")
            pid = w.cursor.fetchone()[0]
            with admin.connect() as conn:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            killed.append(pid)
        return real_post(w, *args, **kwargs)

    monkeypatch.setattr(journal, "post_cursor", post_on_a_dying_connection)
    fake_openai.enqueue("billed", usage=(17, 9))
    llm = MeteredLLM(agents_on(), {FAKE_MODEL: FAKE_PRICE}, budget, {FAKE_URL: fake_openai.client(FAKE_URL)},
                     log_to=CallLog(engine))
    done = await llm.complete("writer", MSG)
    assert killed and done.text == "billed" and done.meta["booked"] is True
    assert spent(budget) == cost(FAKE_PRICE, 17, 9)
    assert budget.open_reservations() == 0
    assert journal.verify() == []
    engine.dispose()
    admin.dispose()
