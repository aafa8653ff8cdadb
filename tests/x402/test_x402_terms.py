"""payments/x402.py: [x402] settings -> terms of a paid read, and the SDK's facilitator clients (local and HTTP)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from web3 import Web3
from x402.schemas import PaymentRequired

from config.loader import ConfigError, load_settings
from config.settings import Settings
from payments.x402 import (
    FacilitatorUnavailable,
    TermsError,
    TokenDomain,
    local_facilitator,
    read_domain,
    remote_facilitator,
    resolve_terms,
)
from tests.peers.anvil import free_port
from tests.peers.x402 import TOKEN_NAME, TOKEN_VERSION, X402Peer, serve_facilitator
from tests.x402.test_x402_token import pay, requirements

AGENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def settings(**x402) -> Settings:  # noqa: ANN003
    wallet = {"mode": "evm", "chain_id": 31337, "token_address": TOKEN, "address": AGENT, "rpc_url": "http://127.0.0.1:1"}
    return Settings.model_validate({"wallet": wallet, "x402": {"enabled": True, **x402}})


def test_terms_default_to_the_wallet_and_charge_the_price_in_token_units() -> None:
    s = settings(price_article="0.05", price_brief="0.02")
    terms = resolve_terms(s.x402, s.wallet, domain=TokenDomain(TOKEN_NAME, TOKEN_VERSION, 18))
    assert (terms.network, terms.asset, terms.pay_to) == ("eip155:31337", TOKEN, AGENT)
    assert terms.units("article") == 5 * 10**16 and terms.units("brief") == 2 * 10**16
    assert terms.price("article") == {"amount": str(5 * 10**16), "asset": TOKEN,
                                      "extra": {"name": TOKEN_NAME, "version": TOKEN_VERSION}}
    assert set(terms.routes()) == {"/a/[slug].md", "/api/briefs/[slug]"}


def test_a_price_below_one_token_unit_rounds_up_and_a_zero_price_is_free() -> None:
    s = settings(price_article="0.055", price_brief="0")
    terms = resolve_terms(s.x402, s.wallet, domain=TokenDomain(TOKEN_NAME, TOKEN_VERSION, 2))
    assert terms.units("article") == 6  # 0.055 credits at 2 decimals: 5.5 units, charged 6 (never less than asked)
    assert set(terms.routes()) == {"/a/[slug].md"}


def test_explicit_terms_win_over_the_wallet() -> None:
    other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    s = settings(network="eip155:8453", asset=other, pay_to=other)
    terms = resolve_terms(s.x402, s.wallet, domain=TokenDomain("USD Coin", "2", 6))
    assert (terms.network, terms.asset, terms.pay_to) == ("eip155:8453", other, other)


def test_terms_without_a_network_name_the_keys_to_set() -> None:
    s = Settings.model_validate({"x402": {"enabled": True}})
    with pytest.raises(TermsError, match="x402.network is unset and so is wallet.chain_id"):
        resolve_terms(s.x402, s.wallet, domain=TokenDomain(TOKEN_NAME, TOKEN_VERSION, 18))


@pytest.mark.parametrize(("key", "value", "fix"), [
    ("network", "base", "eip155:<chain id>"),
    ("asset", "0x12", "40 hex digits"),
    ("facilitator", "facilitator.example", "https://example.com"),
    ("price_article", "-0.01", "0 or more credits"),
])
def test_bad_x402_settings_are_refused_with_a_fix(key: str, value: str, fix: str) -> None:
    with pytest.raises(ValueError, match=f"x402.{key}") as caught:
        settings(**{key: value})
    assert fix in str(caught.value.errors()[0]["ctx"]["fix"])


def test_the_domain_is_read_from_the_token(x402_peer: X402Peer) -> None:
    assert read_domain(x402_peer.w3, x402_peer.token) == TokenDomain(TOKEN_NAME, TOKEN_VERSION, 18)
    assert read_domain(x402_peer.w3, x402_peer.token, version="2").version == "2"


def test_the_local_facilitator_verifies_and_settles(x402_peer: X402Peer) -> None:
    facilitator = local_facilitator(x402_peer.node.url, x402_peer.facilitator_key, x402_peer.network)
    req = requirements(x402_peer, 10**16)
    payload = pay(x402_peer, req)
    assert asyncio.run(facilitator.verify(payload, req)).is_valid
    settled = asyncio.run(facilitator.settle(payload, req))
    assert settled.success and settled.transaction
    kinds = facilitator.get_supported().kinds
    assert [(k.scheme, k.network) for k in kinds if k.x402_version == 2] == [("exact", x402_peer.network)]


def test_the_local_facilitator_is_unavailable_when_its_node_is_down(x402_peer: X402Peer) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    facilitator = local_facilitator(down, x402_peer.facilitator_key, x402_peer.network, timeout=2)
    req = requirements(x402_peer, 10**16)
    payload = pay(x402_peer, req)
    with pytest.raises(FacilitatorUnavailable, match="verify: the chain node did not answer"):
        asyncio.run(facilitator.verify(payload, req))
    with pytest.raises(FacilitatorUnavailable, match="settle"):
        asyncio.run(facilitator.settle(payload, req))
    assert not x402_peer.authorization_used(payload.payload["authorization"]["from"],
                                            Web3.to_bytes(hexstr=payload.payload["authorization"]["nonce"]))


async def test_a_facilitator_service_over_http(x402_peer: X402Peer) -> None:
    req = requirements(x402_peer, 10**16)
    payload = await x402_peer.paying_client().create_payment_payload(PaymentRequired(accepts=[req]))
    with serve_facilitator(x402_peer) as url:
        facilitator = remote_facilitator(url)
        assert (await facilitator.verify(payload, req)).is_valid
        assert (await facilitator.settle(payload, req)).success
    with pytest.raises(FacilitatorUnavailable, match="verify"):
        await remote_facilitator(url, timeout=2).verify(payload, req)


def _config(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n' + text)
    return cfg


def test_config_check_refuses_paid_reads_without_a_chain_wallet(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, "[x402]\nenabled = true\n"), {})
    (problem,) = caught.value.problems
    assert problem.key == "x402.enabled" and 'wallet.mode = "evm"' in problem.fix


def test_the_local_facilitators_key_comes_from_its_own_keystore_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("facilitator-pw")
    secret.chmod(0o600)
    wallet = (f'[wallet]\nmode = "evm"\nrpc_url = "http://127.0.0.1:8545"\nchain_id = 31337\ntoken_address = "{TOKEN}"\n'
              f'address = "{AGENT}"\nkeystore_file = "{tmp_path / "w"}"\nkeystore_password_file = "{secret}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, wallet + "[x402]\nenabled = true\n"), {})
    assert [p.key for p in caught.value.problems] == ["x402.signer"]
    settings = load_settings(_config(tmp_path, wallet + f'[x402]\nenabled = true\n[x402.signer]\nkeystore_file = '
                                                        f'"{tmp_path / "f"}"\nkeystore_password_file = "{secret}"\n'), {})
    assert settings.x402.signer.keystore_password_value.get_secret_value() == "facilitator-pw"
    assert "facilitator-pw" not in repr(settings)
