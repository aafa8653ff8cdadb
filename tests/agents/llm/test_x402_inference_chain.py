"""Inference paid over x402 on real peers: the SDK's payment middleware in front of FakeOpenAI on 127.0.0.1,
the SDK's facilitator settling EIP-3009 transfers of CreditToken3009 on anvil, the metered client paying per call.

The token has 18 decimals: 10**12 units are 1 ucr. The research role reserves about 3,100 ucr a call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from pydantic import SecretStr

from agents.llm import MeteredLLM
from agents.llm.errors import LLMUnavailable, SpendRefused
from agents.llm.spendpolicy import SpendPolicy
from agents.llm.x402pay import PayingTransport, X402Payer
from config.settings import Settings, WalletSettings, X402Settings, X402SpendSettings
from daemon.wiring import WalletSlot
from daemon.wiring_agents import build_llm
from kernel.clock import utcnow
from ledger import Budget, Journal
from ledger.accounts import WALLET, compute_account, provider_account
from ledger.query import midnight
from ledger.reads import paid_over_x402
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, agents_on
from wallet.keystore import create_keystore
from wallet.wallets import ChainWallet
from wallet.x402spend import CONFIRMED, PENDING, UNCONFIRMED, VOID, VOID_MARGIN_SECONDS, reconcile_paid_inference
from tests.fakes.openai import FakeOpenAI, Fault
from tests.peers.anvil import rpc_call, start_anvil, stop_anvil
from tests.peers.paid_llm import serve_paid_llm
from tests.peers.x402 import X402Peer, deploy_x402

UCR = 10**12  # token units per ucr at 18 decimals
PRICE_UCR = 1_000
ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture
def provider_llm(fake_openai: FakeOpenAI, x402_peer: X402Peer) -> Iterator[str]:
    """The paid stand-in, charging PRICE_UCR a call, paid to the peer's account 1 (the provider here)."""
    with serve_paid_llm(fake_openai, x402_peer, price_units=PRICE_UCR * UCR, pay_to=x402_peer.agent) as url:
        yield url


def spend_settings(peer: X402Peer, **over: Any) -> X402SpendSettings:
    terms = {"enabled": True, "payees": (peer.agent,), "daily_cap": "1", "network": peer.network,
             "asset": peer.token, "decimals": 18, **over}
    return X402SpendSettings(**terms)


def paying(make_llm: Callable[..., MeteredLLM], journal: Journal, peer: X402Peer, url: str,
           settings: X402SpendSettings) -> MeteredLLM:
    policy = SpendPolicy(settings, lambda: paid_over_x402(journal, midnight(utcnow())))
    http = httpx2.AsyncClient(transport=PayingTransport(X402Payer(policy, peer.payer(0))))
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-none", max_retries=0, http_client=http)
    return make_llm(agents=agents_on(base_url=url), clients={url: client})


def booked(journal: Journal) -> list[tuple[str, str | None]]:
    with journal.reading() as cur:
        cur.execute("SELECT idempotency_key, tx_hash FROM ledger_txn WHERE kind = 'x402' ORDER BY id")
        return [(k, t) for k, t in cur.fetchall()]


async def test_each_call_is_paid_on_chain_and_booked_once_against_the_wallet(
        make_llm: Callable[..., MeteredLLM], journal: Journal, x402_peer: X402Peer, provider_llm: str) -> None:
    payer = x402_peer.payer(0).address
    before = x402_peer.balance_of(payer), x402_peer.balance_of(x402_peer.agent)
    wallet = journal.balance(WALLET)
    llm = paying(make_llm, journal, x402_peer, provider_llm, spend_settings(x402_peer))
    for _ in range(2):
        done = await llm.complete("research", ASK)
        assert done.text == "ok" and done.cost == PRICE_UCR
    assert x402_peer.balance_of(payer) == before[0] - 2 * PRICE_UCR * UCR
    assert x402_peer.balance_of(x402_peer.agent) == before[1] + 2 * PRICE_UCR * UCR
    assert journal.balance(compute_account("research")) == 2 * PRICE_UCR
    assert journal.balance(WALLET) == wallet - 2 * PRICE_UCR
    assert journal.balance(provider_account("fake")) == 0
    rows = booked(journal)
    assert len(rows) == 2
    for key, tx in rows:
        assert tx is not None and x402_peer.w3.eth.get_transaction_receipt(tx)["status"] == 1
        assert x402_peer.authorization_used(payer, bytes.fromhex(key.rsplit(":", 1)[1].removeprefix("0x")))


@pytest.mark.parametrize(("over", "why"), [
    ({"enabled": False}, "disabled"),
    ({"payees": ("0x" + "11" * 20,)}, "payee"),
    ({"network": "eip155:1"}, "network"),
    ({"asset": "0x" + "22" * 20}, "asset"),
    ({"daily_cap": "0.0005"}, "daily_cap"),
])
async def test_a_refused_payment_signs_nothing_and_moves_no_token(
        make_llm: Callable[..., MeteredLLM], journal: Journal, x402_peer: X402Peer, provider_llm: str,
        fake_openai: FakeOpenAI, over: dict, why: str) -> None:
    payer = x402_peer.payer(0).address
    before = x402_peer.balance_of(payer)
    llm = paying(make_llm, journal, x402_peer, provider_llm, spend_settings(x402_peer, **over))
    with pytest.raises(SpendRefused) as caught:
        await llm.complete("research", ASK)
    assert caught.value.reason == why
    assert x402_peer.balance_of(payer) == before
    assert booked(journal) == [] and journal.balance(compute_account("research")) == 0
    assert fake_openai.chat_requests == []  # the model never ran


async def test_exact_priced_over_the_reservation_is_refused_before_paying(
        make_llm: Callable[..., MeteredLLM], journal: Journal, x402_peer: X402Peer, fake_openai: FakeOpenAI) -> None:
    payer = x402_peer.payer(0).address
    before = x402_peer.balance_of(payer)
    with serve_paid_llm(fake_openai, x402_peer, price_units=50_000 * UCR, pay_to=x402_peer.agent) as url:
        llm = paying(make_llm, journal, x402_peer, url, spend_settings(x402_peer))
        with pytest.raises(SpendRefused) as caught:
            await llm.complete("research", ASK)
    assert caught.value.reason == "reservation"
    assert x402_peer.balance_of(payer) == before and booked(journal) == []


async def test_the_daily_cap_stops_the_second_call_after_the_first_is_paid(
        make_llm: Callable[..., MeteredLLM], journal: Journal, x402_peer: X402Peer, provider_llm: str) -> None:
    payer = x402_peer.payer(0).address
    before = x402_peer.balance_of(payer)
    llm = paying(make_llm, journal, x402_peer, provider_llm, spend_settings(x402_peer, daily_cap="0.0015"))
    await llm.complete("research", ASK)
    with pytest.raises(SpendRefused) as caught:
        await llm.complete("research", ASK)
    assert caught.value.reason == "daily_cap"
    assert x402_peer.balance_of(payer) == before - PRICE_UCR * UCR
    assert len(booked(journal)) == 1


async def test_the_daemon_wires_the_paying_client_from_settings_and_the_wallet_keystore(
        tmp_path: Path, journal: Journal, budget: Budget, x402_peer: X402Peer, provider_llm: str) -> None:
    keystore = tmp_path / "wallet.json"
    payer = create_keystore(keystore, "pw")
    x402_peer.mint(payer, 10_000 * UCR)
    settings = Settings(
        state_dir=tmp_path, agents=agents_on(base_url=provider_llm), prices={FAKE_MODEL: FAKE_PRICE},
        wallet=WalletSettings(keystore_file=keystore, keystore_password_value=SecretStr("pw")),
        x402=X402Settings(spend=spend_settings(x402_peer)),
    )
    closers: list = []
    llm = build_llm(settings, journal, budget, closers)
    try:
        done = await llm.complete("research", ASK)
    finally:
        for close in closers:
            await close()
    assert done.text == "ok"
    assert x402_peer.balance_of(payer) == (10_000 - PRICE_UCR) * UCR
    assert journal.balance(compute_account("research")) == PRICE_UCR


async def test_a_settled_payment_is_confirmed_at_depth(
        make_llm: Callable[..., MeteredLLM], journal: Journal, x402_peer: X402Peer, provider_llm: str) -> None:
    llm = paying(make_llm, journal, x402_peer, provider_llm, spend_settings(x402_peer))
    await llm.complete("research", ASK)
    (key, _), = booked(journal)
    check = dict(w3=x402_peer.w3, token=x402_peer.token, network=x402_peer.network, confirmations=2,
                 max_timeout_seconds=600)
    assert reconcile_paid_inference(journal, **check).statuses == {key: UNCONFIRMED}
    x402_peer.mine(2)
    assert reconcile_paid_inference(journal, **check).statuses == {key: CONFIRMED}
    assert journal.balance(compute_account("research")) == PRICE_UCR


@pytest.fixture
def own_peer() -> Iterator[X402Peer]:
    """A token on an anvil of its own: this test moves the chain's clock, which would expire others' payments."""
    node = start_anvil()
    try:
        yield deploy_x402(node)
    finally:
        stop_anvil(node)


async def test_a_payment_that_left_and_never_settled_is_booked_once_then_void_when_it_expires(
        make_llm: Callable[..., MeteredLLM], journal: Journal, own_peer: X402Peer, fake_openai: FakeOpenAI) -> None:
    x402_peer = own_peer
    fake_openai.fail(Fault.status(500), times=10)  # the model fails: the middleware settles nothing
    payer = x402_peer.payer(0).address
    before = x402_peer.balance_of(payer)
    with serve_paid_llm(fake_openai, x402_peer, price_units=PRICE_UCR * UCR, pay_to=x402_peer.agent) as url:
        llm = paying(make_llm, journal, x402_peer, url, spend_settings(x402_peer))
        with pytest.raises(LLMUnavailable):
            await llm.complete("research", ASK)
    assert len(fake_openai.chat_requests) >= 2  # retried, always with the one signed payment
    (key, tx), = booked(journal)
    assert tx is None and journal.balance(compute_account("research")) == PRICE_UCR  # pending, the most it costs
    assert x402_peer.balance_of(payer) == before
    check = dict(w3=x402_peer.w3, token=x402_peer.token, network=x402_peer.network, confirmations=0,
                 max_timeout_seconds=600)
    assert reconcile_paid_inference(journal, **check).statuses == {key: PENDING}
    rpc_call(x402_peer.node.url, "evm_increaseTime", [600 + VOID_MARGIN_SECONDS + 1])
    x402_peer.mine()
    done = reconcile_paid_inference(journal, **check)
    assert done.statuses == {key: VOID} and done.voided_ucr == PRICE_UCR
    assert journal.balance(compute_account("research")) == 0
    assert paid_over_x402(journal, midnight(utcnow())) == 0
    assert reconcile_paid_inference(journal, **check).statuses == {}  # reversed once, then closed


async def test_the_daemons_reconcile_job_settles_the_paid_calls_beside_the_balance(
        make_llm: Callable[..., MeteredLLM], journal: Journal, x402_peer: X402Peer, provider_llm: str,
        tmp_path: Path) -> None:
    payer = x402_peer.payer(0).address
    spend = spend_settings(x402_peer)
    llm = paying(make_llm, journal, x402_peer, provider_llm, spend)
    await llm.complete("research", ASK)
    (key, _), = booked(journal)
    x402_peer.mine(2)
    settings = Settings(state_dir=tmp_path, x402=X402Settings(spend=spend),
                        wallet=WalletSettings(mode="evm", confirmations=2))
    slot = WalletSlot(journal, settings, lambda s, j: ChainWallet(x402_peer.w3, j, s.wallet, token=x402_peer.token,
                                                                  address=payer))
    assert slot.reconcile_paid_inference().statuses == {key: CONFIRMED}
    off = Settings(state_dir=tmp_path, wallet=WalletSettings(mode="evm"))
    assert WalletSlot(journal, off, lambda s, j: ChainWallet(
        x402_peer.w3, j, s.wallet, token=x402_peer.token, address=payer)).reconcile_paid_inference() is None
