"""Ledger spend >= what the provider billed, against the fake OpenAI server over real sockets.

Two ways a billed answer never reaches the ledger as usage: the client times out after the server
generated it, and the client process is SIGKILLed while its request is in flight. The first is booked
at the worst case when it happens; the second when the dead process's hold expires, at the next gate.
The fake server counts what it billed (every answer it generated, delivered or not).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import openai
import pytest

from agents.llm.calllog import CallLog
from agents.llm import LLMUnavailable, MeteredLLM, cost, estimate_prompt_tokens
from kernel.db import make_engine
from config.settings import BudgetSettings
from ledger import Budget, Journal
from ledger.funding import deposit
from tests.agents import llm_worker
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, agents_on
from tests.conftest import REPO
from tests.fakes.openai import FakeOpenAI, Fault

MSG = [{"role": "user", "content": "Write one sentence about otters."}]
WORST = cost(FAKE_PRICE, estimate_prompt_tokens(MSG), 512)
TTL = 2


def billed(fake: FakeOpenAI) -> int:
    return sum(cost(FAKE_PRICE, *u) for u in fake.billed)


async def no_sleep(_seconds: float) -> None:
    return None


async def test_timeouts_after_the_server_generated_are_booked_at_least_at_what_it_billed(budget, call_log) -> None:
    fake = FakeOpenAI(models=(FAKE_MODEL,))
    fake.enqueue(Fault.late(delay=2.5, usage=(30, 500)))  # generated, billed, written after the client gave up
    fake.enqueue(Fault.late(delay=2.5, usage=(30, 200)))
    fake.enqueue("answered", usage=(30, 12))
    with fake.serve() as base_url:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)
        llm = MeteredLLM(agents_on(base_url, timeout_seconds=1, max_retries=2), {FAKE_MODEL: FAKE_PRICE}, budget,
                         {base_url: client}, log_to=call_log, sleep=no_sleep, breaker_threshold=10)
        done = await llm.complete("writer", MSG, cycle_id="late")
        # Every attempt timed out from now on: nothing answers, yet each attempt is booked.
        fake.fail(Fault.late(delay=2.5, usage=(30, 100)), times=3)
        with pytest.raises(LLMUnavailable):
            await llm.complete("writer", MSG, cycle_id="late")
    spend = budget.journal.balance("expenses:compute")
    assert done.text == "answered" and done.cost == cost(FAKE_PRICE, 30, 12)
    assert len(fake.billed) == 6
    assert spend >= billed(fake)
    assert spend == 5 * WORST + done.cost  # exact where usage came back, the held worst case elsewhere
    assert budget.open_reservations() == 0
    print(f"billed {billed(fake)} ucr, booked {spend} ucr")


def test_a_client_killed_mid_call_is_booked_at_its_worst_case_once_its_hold_expires(db_url: str) -> None:
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    CallLog(engine).migrate()
    deposit(journal, 10_000_000, idempotency_key="fund")
    fake = FakeOpenAI(models=(FAKE_MODEL,))
    fake.enqueue(Fault.late(delay=30, usage=(30, 480)))  # the server generates and bills at once
    with fake.serve() as base_url:
        proc = subprocess.Popen([sys.executable, "-m", "tests.agents.llm_worker", db_url, base_url, str(TTL)],
                                cwd=REPO, stderr=subprocess.PIPE)
        try:
            assert fake.received.wait(60), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else ""
            time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert billed(fake) == cost(FAKE_PRICE, 30, 480) > 0
    budget = Budget(journal, BudgetSettings(reservation_ttl_seconds=TTL))
    assert budget.open_reservations() == 1  # the dead process's hold, marked sent
    assert journal.balance("expenses:compute") == 0  # not booked yet: the hold still counts against the money
    assert budget.snapshot().reserved == cost(llm_worker.PRICE, estimate_prompt_tokens(llm_worker.MESSAGES), 512)
    time.sleep(TTL + 0.5)
    budget.evaluate()  # the gate expires the hold: sent, so spent
    spend = journal.balance("expenses:compute")
    assert budget.open_reservations() == 0
    assert spend == WORST >= billed(fake)
    assert journal.balance("liabilities:provider:fake") == -spend  # settlement will pay it
    assert journal.verify() == []
    engine.dispose()
