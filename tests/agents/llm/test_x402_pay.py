"""Inference paid over x402 through the metered client: the SDK signs, the policy decides, the ledger books once.

The endpoint is FakeOpenAI behind tests/fakes/x402_llm.PaidFake (the SDK's wire format, signatures
recovered); the real token and facilitator on anvil are in tests/x402/test_inference_*.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from eth_account import Account

from agents.llm import MeteredLLM
from agents.llm.calllog import CallLog
from agents.llm.errors import LLMRequestRejected, SpendRefused
from agents.llm.spendpolicy import SpendPolicy
from agents.llm.x402pay import PayingTransport, X402Payer
from config.loader import ConfigError
from config.settings import Settings, X402Settings, X402SpendSettings
from daemon.wiring_agents import paying_http_client
from kernel.clock import utcnow
from ledger import Budget, Journal
from ledger.accounts import WALLET, compute_account, provider_account
from ledger.query import midnight
from ledger.reads import paid_over_x402
from tests.agents.conftest import FAKE_URL
from tests.fakes.openai import FakeOpenAI
from tests.fakes.x402_llm import NETWORK, PAYEE, TOKEN, PaidFake, requirements

PAYER = Account.create()
PRICE = 1_000  # token units at 6 decimals = 1,000 ucr; the research role reserves ~3,100 ucr a call
OPEN = X402SpendSettings(enabled=True, payees=(PAYEE,), daily_cap="1", network=NETWORK, asset=TOKEN)
ASK = [{"role": "user", "content": "hello"}]


def paying(make_llm: Callable[..., MeteredLLM], journal: Journal, paid: PaidFake,
           settings: X402SpendSettings = OPEN) -> MeteredLLM:
    policy = SpendPolicy(settings, lambda: paid_over_x402(journal, midnight(utcnow())))
    http = httpx2.AsyncClient(transport=PayingTransport(X402Payer(policy, PAYER), paid.transport()))
    client = openai.AsyncOpenAI(base_url=FAKE_URL, api_key="sk-fake", max_retries=0, http_client=http)
    return make_llm(clients={FAKE_URL: client})


def x402_txns(journal: Journal) -> list[tuple[Any, ...]]:
    with journal.reading() as cur:
        cur.execute("SELECT idempotency_key, tx_hash FROM ledger_txn WHERE kind = 'x402' ORDER BY id")
        return cur.fetchall()


async def test_each_call_pays_once_and_books_compute_against_the_wallet(
        make_llm: Callable[..., MeteredLLM], journal: Journal, budget: Budget, fake_openai: FakeOpenAI) -> None:
    paid = PaidFake(fake_openai, [requirements(PRICE)])
    llm = paying(make_llm, journal, paid)
    wallet = journal.balance(WALLET)
    for _ in range(2):
        done = await llm.complete("research", ASK)
        assert done.text == "ok"
        assert done.cost == PRICE
    assert [p["payer"] for p in paid.paid] == [PAYER.address.lower()] * 2
    assert journal.balance(compute_account("research")) == 2 * PRICE
    assert journal.balance(WALLET) == wallet - 2 * PRICE
    assert journal.balance(provider_account("fake")) == 0  # no provider liability: the wallet paid
    txns = x402_txns(journal)
    assert len(txns) == 2 and all(tx is not None for _, tx in txns)
    assert {key.rsplit(":", 1)[1] for key, _ in txns} == {p["nonce"] for p in paid.paid}
    assert budget.open_reservations() == 0


async def test_exact_over_the_reservation_is_refused_before_signing(
        make_llm: Callable[..., MeteredLLM], journal: Journal, budget: Budget, fake_openai: FakeOpenAI,
        call_log: CallLog) -> None:
    paid = PaidFake(fake_openai, [requirements(1_000_000)])
    with pytest.raises(SpendRefused) as caught:
        await paying(make_llm, journal, paid).complete("research", ASK)
    assert caught.value.reason == "reservation" and caught.value.retryable is False
    assert caught.value.role == "research"
    assert paid.seen == [] and x402_txns(journal) == []
    assert journal.balance(compute_account("research")) == 0
    assert budget.open_reservations() == 0 and budget.snapshot().reserved == 0
    assert len(fake_openai.chat_requests) == 0  # the model never ran
    assert [(c.error_class, c.cost, c.status_code) for c in call_log.calls()] == [("SpendRefused:reservation", 0, 402)]


@pytest.mark.parametrize(("settings", "offer", "why"), [
    (X402SpendSettings(), requirements(PRICE), "disabled"),
    (OPEN, requirements(PRICE, pay_to="0x" + "11" * 20), "payee"),
    (OPEN, requirements(PRICE, network="eip155:1"), "network"),
    (OPEN, requirements(PRICE, asset="0x" + "22" * 20), "asset"),
])
async def test_a_refused_payment_signs_nothing(
        make_llm: Callable[..., MeteredLLM], journal: Journal, fake_openai: FakeOpenAI,
        settings: X402SpendSettings, offer: Any, why: str) -> None:
    paid = PaidFake(fake_openai, [offer])
    with pytest.raises(SpendRefused) as caught:
        await paying(make_llm, journal, paid, settings).complete("research", ASK)
    assert caught.value.reason == why
    assert paid.seen == [] and x402_txns(journal) == []


async def test_the_policy_picks_the_accept_it_allows(
        make_llm: Callable[..., MeteredLLM], journal: Journal, fake_openai: FakeOpenAI) -> None:
    paid = PaidFake(fake_openai, [requirements(PRICE, network="eip155:1"), requirements(PRICE)])
    await paying(make_llm, journal, paid).complete("research", ASK)
    assert len(paid.paid) == 1


async def test_the_daily_cap_is_summed_from_the_ledger(
        make_llm: Callable[..., MeteredLLM], journal: Journal, fake_openai: FakeOpenAI) -> None:
    capped = OPEN.model_copy(update={"daily_cap": 1_500})
    paid = PaidFake(fake_openai, [requirements(PRICE)])
    llm = paying(make_llm, journal, paid, capped)
    await llm.complete("research", ASK)
    with pytest.raises(SpendRefused) as caught:
        await llm.complete("research", ASK)
    assert caught.value.reason == "daily_cap"
    assert len(paid.paid) == 1 and len(paid.seen) == 1
    assert paid_over_x402(journal, midnight(utcnow())) == PRICE


async def test_a_timeout_after_paying_resends_the_same_payment_and_never_pays_twice(
        make_llm: Callable[..., MeteredLLM], journal: Journal, budget: Budget, fake_openai: FakeOpenAI) -> None:
    paid = PaidFake(fake_openai, [requirements(PRICE)], fail_after_pay=1)
    with pytest.raises(LLMRequestRejected):  # the retry's payment was already used: the answer is lost
        await paying(make_llm, journal, paid).complete("research", ASK)
    assert len(paid.paid) == 1
    assert len(paid.seen) == 2 and paid.seen[0]["nonce"] == paid.seen[1]["nonce"]  # resent, not signed anew
    assert journal.balance(compute_account("research")) == PRICE  # booked once
    assert len(x402_txns(journal)) == 1
    assert budget.open_reservations() == 0


async def test_upto_authorises_at_most_the_reservation_and_is_booked_pending_until_settled(
        make_llm: Callable[..., MeteredLLM], journal: Journal, fake_openai: FakeOpenAI) -> None:
    over = PaidFake(fake_openai, [requirements(1_000_000, scheme="upto")])
    with pytest.raises(SpendRefused) as caught:
        await paying(make_llm, journal, over).complete("research", ASK)
    assert caught.value.reason == "reservation" and over.seen == []

    unsettled = PaidFake(fake_openai, [requirements(PRICE, scheme="upto")])
    with pytest.raises(LLMRequestRejected):  # this fake never settles upto
        await paying(make_llm, journal, unsettled).complete("research", ASK)
    assert [(s["scheme"], s["to"], s["value"]) for s in unsettled.seen] == [("upto", PAYEE, PRICE)]
    # The signature left: the most it can cost is booked, pending (no tx hash) until the chain says.
    assert journal.balance(compute_account("research")) == PRICE
    assert [tx for _, tx in x402_txns(journal)] == [None]


def test_paying_is_off_by_default_and_refused_without_the_wallet_keystore(journal: Journal, tmp_path: Any) -> None:
    assert paying_http_client(Settings(state_dir=tmp_path), journal) is None
    enabled = Settings(state_dir=tmp_path, x402=X402Settings(spend=OPEN))
    with pytest.raises(ConfigError) as caught:
        paying_http_client(enabled, journal)
    assert [p.key for p in caught.value.problems] == ["x402.spend.enabled"]


class RepricingFake(PaidFake):
    """A paywall that raises its price after the first payment it takes (and loses that answer)."""

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return super().handler(request)
        except httpx2.ReadTimeout:
            self.accepts = [requirements(PRICE + 1)]
            raise


async def test_a_retry_never_signs_a_second_payment_while_the_first_may_settle(
        make_llm: Callable[..., MeteredLLM], journal: Journal, fake_openai: FakeOpenAI) -> None:
    paid = RepricingFake(fake_openai, [requirements(PRICE)], fail_after_pay=1)
    with pytest.raises(SpendRefused) as caught:
        await paying(make_llm, journal, paid).complete("research", ASK)
    assert caught.value.reason == "outstanding"
    assert len(paid.seen) == 1 and len(paid.paid) == 1  # one signature, one payment
    assert journal.balance(compute_account("research")) == PRICE
