"""Property: whatever each paid request meets, every payment that left is booked once, and none is paid twice.

Hypothesis draws, per paid request, one of PAID_OUTCOMES (answered and settled; settled and the answer
lost; lost on the way; a 5xx with nothing settled) for a few calls with retries, on a fresh ledger.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx2
import openai
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.llm import LLMError, MeteredLLM
from agents.llm.calllog import CallLog
from agents.llm.spendpolicy import SpendPolicy
from agents.llm.x402pay import PayingTransport, X402Payer
from config.settings import BudgetSettings, X402SpendSettings
from kernel.clock import utcnow
from kernel.db import make_engine
from ledger import Budget, Journal
from ledger.accounts import compute_account
from ledger.funding import deposit
from ledger.query import midnight
from ledger.reads import paid_over_x402
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, FAKE_URL, agents_on
from tests.fakes.openai import FakeOpenAI
from tests.fakes.x402_llm import NETWORK, PAID_OUTCOMES, PAYEE, TOKEN, PaidFake, requirements

PAYER = Account.create()
PRICE = 1_000
OPEN = X402SpendSettings(enabled=True, payees=(PAYEE,), daily_cap="1", network=NETWORK, asset=TOKEN)


async def _nowait(_: float) -> None:
    return None


async def run_calls(journal: Journal, budget: Budget, paid: PaidFake, calls: int) -> None:
    policy = SpendPolicy(OPEN, lambda: paid_over_x402(journal, midnight(utcnow())))
    http = httpx2.AsyncClient(transport=PayingTransport(X402Payer(policy, PAYER), paid.transport()))
    client = openai.AsyncOpenAI(base_url=FAKE_URL, api_key="sk-fake", max_retries=0, http_client=http)
    llm = MeteredLLM(agents_on(max_retries=2), {FAKE_MODEL: FAKE_PRICE}, budget, {FAKE_URL: client},
                     sleep=_nowait, log_to=CallLog(journal.engine))
    for _ in range(calls):
        try:
            await llm.complete("research", [{"role": "user", "content": "hi"}])
        except LLMError:
            pass  # a call may fail; the money must still be right


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(st.sampled_from(PAID_OUTCOMES), max_size=8), calls=st.integers(1, 3))
def test_every_payment_that_left_is_booked_once_and_none_is_paid_twice(script: list[str], calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'l.db'}")
        journal = Journal(engine)
        journal.migrate()
        CallLog(engine).migrate()
        deposit(journal, 10_000_000, idempotency_key="funding")
        budget = Budget(journal, BudgetSettings())
        paid = PaidFake(FakeOpenAI(models=(FAKE_MODEL,)), [requirements(PRICE)], script=list(script))
        asyncio.run(run_calls(journal, budget, paid, calls))
        with journal.reading() as cur:
            cur.execute("SELECT idempotency_key FROM ledger_txn WHERE kind = 'x402'")
            booked = [key.rsplit(":", 1)[1] for (key,) in cur.fetchall()]
        left = {s["nonce"] for s in paid.seen}
        settled = [p["nonce"] for p in paid.paid]
        assert len(settled) == len(set(settled))  # no payment settled twice
        assert len(settled) <= calls  # no call paid twice: its retries resend the one signed payment
        assert sorted(booked) == sorted(left)  # every payment that left: booked, once
        assert journal.balance(compute_account("research")) == PRICE * len(left) >= PRICE * len(settled)
        assert budget.open_reservations() == 0
        engine.dispose()
