"""The spend policy: default-deny, each rule names its reason, and the guarded signer signs only what it approved."""

from __future__ import annotations

import pytest
from eth_account import Account
from x402.mechanisms.evm.signers import EthAccountSigner

from agents.llm.errors import SpendRefused
from agents.llm.spendpolicy import GuardedSigner, Offer, SpendPolicy, signing_window, units_to_ucr_up
from config.settings import X402SpendSettings
from tests.fakes.x402_llm import NETWORK, PAYEE, TOKEN

OPEN = X402SpendSettings(enabled=True, payees=(PAYEE,), daily_cap="1", network=NETWORK, asset=TOKEN)


def offer(units: int = 1_000, **kw: str) -> Offer:
    terms = {"scheme": "exact", "network": NETWORK, "asset": TOKEN, "pay_to": PAYEE, **kw}
    return Offer(terms["scheme"], terms["network"], terms["asset"].lower(), terms["pay_to"].lower(), units)


def reason(policy: SpendPolicy, o: Offer, cap: int = 10_000) -> str:
    with pytest.raises(SpendRefused) as caught:
        policy.approve(o, cap)
    assert caught.value.retryable is False
    return caught.value.reason


def test_the_default_settings_refuse_every_payment() -> None:
    assert reason(SpendPolicy(X402SpendSettings(), lambda: 0), offer()) == "disabled"


def test_enabled_without_pins_still_refuses() -> None:
    bare = SpendPolicy(X402SpendSettings(enabled=True), lambda: 0)
    assert reason(bare, offer()) == "network"
    pinned_net = SpendPolicy(X402SpendSettings(enabled=True, network=NETWORK), lambda: 0)
    assert reason(pinned_net, offer()) == "asset"
    no_payee = SpendPolicy(X402SpendSettings(enabled=True, network=NETWORK, asset=TOKEN, daily_cap="1"), lambda: 0)
    assert reason(no_payee, offer()) == "payee"


@pytest.mark.parametrize(("terms", "why"), [
    ({"network": "eip155:1"}, "network"),
    ({"asset": "0x" + "11" * 20}, "asset"),
    ({"pay_to": "0x" + "22" * 20}, "payee"),
    ({"scheme": "batch"}, "scheme"),
])
def test_wrong_network_asset_payee_or_scheme_is_refused(terms: dict, why: str) -> None:
    assert reason(SpendPolicy(OPEN, lambda: 0), offer(**terms)) == why


def test_an_authorisation_valid_too_long_is_refused() -> None:
    policy = SpendPolicy(OPEN, lambda: 0)
    assert reason(policy, Offer("exact", NETWORK, TOKEN.lower(), PAYEE.lower(), 1, timeout=3_600)) == "timeout"
    assert policy.approve(Offer("exact", NETWORK, TOKEN.lower(), PAYEE.lower(), 1, timeout=600), 10).ucr == 1


def test_a_payment_over_the_reservation_is_refused_and_one_at_it_passes() -> None:
    policy = SpendPolicy(OPEN, lambda: 0)
    assert reason(policy, offer(10_001), cap=10_000) == "reservation"
    assert policy.approve(offer(10_000), 10_000).ucr == 10_000


def test_the_daily_cap_counts_the_ledger_and_what_is_in_flight() -> None:
    paid = [990_000]
    policy = SpendPolicy(OPEN, lambda: paid[0])
    first = policy.approve(offer(6_000), 10_000)
    assert policy.in_flight() == 6_000
    assert reason(policy, offer(6_000)) == "daily_cap"  # 990k + 6k in flight + 6k > 1M
    policy.done(first)
    paid[0] = 996_000  # the first one is in the ledger now
    assert reason(policy, offer(6_000)) == "daily_cap"
    assert policy.approve(offer(4_000), 10_000).ucr == 4_000


def test_token_units_round_up_to_ucr() -> None:
    assert units_to_ucr_up(1, 18) == 1
    assert units_to_ucr_up(10**12, 18) == 1
    assert units_to_ucr_up(10**12 + 1, 18) == 2
    assert units_to_ucr_up(7, 6) == 7
    assert units_to_ucr_up(7, 2) == 70_000


def _typed(to: str, value: int) -> tuple:
    domain = {"name": "Credit", "version": "1", "chainId": 31337, "verifyingContract": TOKEN}
    types = {"Mail": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}]}
    return domain, types, "Mail", {"to": to, "value": value}


def test_the_guarded_signer_signs_nothing_without_an_approval() -> None:
    signer = GuardedSigner(EthAccountSigner(Account.create()))
    with pytest.raises(SpendRefused):
        signer.sign_typed_data(*_typed(PAYEE, 1))
    with signing_window(), pytest.raises(SpendRefused):
        signer.sign_typed_data(*_typed(PAYEE, 1))


def test_an_approval_dies_with_its_signing_window() -> None:
    signer = GuardedSigner(EthAccountSigner(Account.create()))
    policy = SpendPolicy(OPEN, lambda: 0)
    with signing_window():
        policy.approve(offer(500), 10_000)
    with signing_window(), pytest.raises(SpendRefused):
        signer.sign_typed_data(*_typed(PAYEE, 500))


def test_the_guarded_signer_signs_once_per_approval_and_only_its_terms() -> None:
    signer = GuardedSigner(EthAccountSigner(Account.create()))
    policy = SpendPolicy(OPEN, lambda: 0)
    with signing_window():
        policy.approve(offer(500), 10_000)
        with pytest.raises(SpendRefused) as caught:
            signer.sign_typed_data(*_typed(PAYEE, 501))
        assert caught.value.reason == "reservation"
        policy.approve(offer(500), 10_000)
        with pytest.raises(SpendRefused):
            signer.sign_typed_data(*_typed("0x" + "33" * 20, 500))
        policy.approve(offer(500), 10_000)
        assert len(signer.sign_typed_data(*_typed(PAYEE, 500))) == 65
        with pytest.raises(SpendRefused):  # the approval was used up by that signature
            signer.sign_typed_data(*_typed(PAYEE, 500))
