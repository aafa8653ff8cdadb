"""The x402 peer: CreditToken3009 on anvil settles the SDK's exact payments through the SDK's own facilitator."""

from __future__ import annotations

import asyncio
import time

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3.exceptions import ContractLogicError

from tests.peers.x402 import TOKEN_NAME, TOKEN_VERSION, X402Peer, random_nonce


def requirements(peer: X402Peer, units: int, *, pay_to: str | None = None, timeout: int = 120):
    from x402.schemas import PaymentRequirements

    return PaymentRequirements(
        scheme="exact", network=peer.network, asset=peer.token, amount=str(units), pay_to=pay_to or peer.agent,
        max_timeout_seconds=timeout, extra={"name": peer.name, "version": peer.version},
    )


def pay(peer: X402Peer, req, payer: int = 0):  # noqa: ANN001, ANN201
    """The SDK client's payment payload for `req` (what a paying reader sends in PAYMENT-SIGNATURE)."""
    from x402.schemas import PaymentRequired

    return asyncio.run(peer.paying_client(payer).create_payment_payload(PaymentRequired(accepts=[req])))


def sign(peer: X402Peer, primary: str, fields: list[tuple[str, str]], message: dict, key: str) -> tuple[int, bytes, bytes]:
    """An EIP-712 signature over the token's domain, split into (v, r, s)."""
    data = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                  primary: [{"name": n, "type": t} for n, t in fields]},
        "primaryType": primary,
        "domain": {"name": TOKEN_NAME, "version": TOKEN_VERSION, "chainId": peer.node.chain_id, "verifyingContract": peer.token},
        "message": message,
    }
    sig = Account.sign_message(encode_typed_data(full_message=data), key)
    return sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")


AUTH_FIELDS = [("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
               ("validBefore", "uint256"), ("nonce", "bytes32")]


def authorization(peer: X402Peer, primary: str, *, to: str, value: int, valid_before: int | None = None) -> tuple:
    payer = peer.payer(0)
    nonce = random_nonce()
    valid_before = valid_before if valid_before is not None else int(time.time()) + 600
    message = {"from": payer.address, "to": to, "value": value, "validAfter": 0, "validBefore": valid_before, "nonce": nonce}
    v, r, s = sign(peer, primary, AUTH_FIELDS, message, payer.key.to_0x_hex())
    return (payer.address, to, value, 0, valid_before, nonce, v, r, s)


def test_the_token_answers_what_the_sdk_facilitator_reads(x402_peer: X402Peer) -> None:
    token = x402_peer.contract().functions
    assert token.name().call() == TOKEN_NAME
    assert token.version().call() == TOKEN_VERSION
    assert token.decimals().call() == 18
    assert token.authorizationState(x402_peer.payer(0).address, random_nonce()).call() is False


def test_sdk_facilitator_verifies_and_settles_an_exact_payment(x402_peer: X402Peer) -> None:
    req = requirements(x402_peer, 50_000_000_000_000_000)
    payload = pay(x402_peer, req)
    payer = x402_peer.payer(0).address
    before_payer, before_agent = x402_peer.balance_of(payer), x402_peer.balance_of(x402_peer.agent)

    verified = x402_peer.facilitator.verify(payload, req)
    assert verified.is_valid, verified.invalid_reason
    settled = x402_peer.facilitator.settle(payload, req)
    assert settled.success, (settled.error_reason, settled.error_message)

    receipt = x402_peer.w3.eth.get_transaction_receipt(settled.transaction)
    assert receipt["status"] == 1 and receipt["from"] == x402_peer.facilitator_address  # the facilitator paid the gas
    assert x402_peer.balance_of(payer) == before_payer - 50_000_000_000_000_000
    assert x402_peer.balance_of(x402_peer.agent) == before_agent + 50_000_000_000_000_000
    nonce = bytes.fromhex(payload.payload["authorization"]["nonce"].removeprefix("0x"))
    assert x402_peer.authorization_used(payer, nonce)


def test_a_settled_payment_replayed_is_refused_and_moves_nothing(x402_peer: X402Peer) -> None:
    req = requirements(x402_peer, 10**16)
    payload = pay(x402_peer, req)
    assert x402_peer.facilitator.settle(payload, req).success
    balance = x402_peer.balance_of(x402_peer.agent)

    again = x402_peer.facilitator.verify(payload, req)
    assert not again.is_valid
    assert not x402_peer.facilitator.settle(payload, req).success
    assert x402_peer.balance_of(x402_peer.agent) == balance


def test_receive_with_authorization_only_by_the_payee(x402_peer: X402Peer) -> None:
    args = authorization(x402_peer, "ReceiveWithAuthorization", to=x402_peer.agent, value=10**15)
    token = x402_peer.contract().functions
    with pytest.raises(ContractLogicError, match="caller must be the payee"):
        token.receiveWithAuthorization(*args).call({"from": x402_peer.owner})
    tx = token.receiveWithAuthorization(*args).transact({"from": x402_peer.agent})
    assert x402_peer.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def test_a_canceled_authorization_cannot_be_used(x402_peer: X402Peer) -> None:
    args = authorization(x402_peer, "TransferWithAuthorization", to=x402_peer.agent, value=10**15)
    payer, nonce = x402_peer.payer(0), args[5]
    v, r, s = sign(x402_peer, "CancelAuthorization", [("authorizer", "address"), ("nonce", "bytes32")],
                   {"authorizer": payer.address, "nonce": nonce}, payer.key.to_0x_hex())
    token = x402_peer.contract().functions
    tx = token.cancelAuthorization(payer.address, nonce, v, r, s).transact({"from": x402_peer.owner})
    x402_peer.w3.eth.wait_for_transaction_receipt(tx)
    assert x402_peer.authorization_used(payer.address, nonce)
    with pytest.raises(ContractLogicError, match="authorization is used or canceled"):
        token.transferWithAuthorization(*args).call({"from": x402_peer.owner})


def test_an_expired_or_forged_authorization_reverts(x402_peer: X402Peer) -> None:
    token = x402_peer.contract().functions
    expired = authorization(x402_peer, "TransferWithAuthorization", to=x402_peer.agent, value=10**15,
                            valid_before=int(time.time()) - 10)
    with pytest.raises(ContractLogicError, match="authorization is expired"):
        token.transferWithAuthorization(*expired).call({"from": x402_peer.owner})
    good = authorization(x402_peer, "TransferWithAuthorization", to=x402_peer.agent, value=10**15)
    forged = (good[0], x402_peer.owner, *good[2:])  # the payee changed after signing
    with pytest.raises(ContractLogicError, match="invalid signature"):
        token.transferWithAuthorization(*forged).call({"from": x402_peer.owner})
