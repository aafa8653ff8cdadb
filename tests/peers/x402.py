"""The x402 peer: an EIP-3009 credit token on anvil and the x402 SDK's own facilitator against it.

    node = start_anvil()                       # tests/peers/anvil.py
    peer = deploy_x402(node)                   # CreditToken3009, minted to the payers
    peer.facilitator                           # x402FacilitatorSync (the SDK's), exact on peer.network
    peer.price(units)                          # an AssetAmount for a route or a requirement
    peer.paying_client(i)                      # the SDK's x402Client, paying from payer i
    with serve_facilitator(peer) as url: ...   # the same facilitator over HTTP on 127.0.0.1

Accounts (anvil's dev mnemonic): 0 deploys and owns the token, 1 is the agent (the payee), 2..7 are
payers holding PAYER_FUNDS_UNITS each, 9 is the facilitator's signer (it pays the settlement gas).
Fixtures (registered for every test by tests/conftest.py): `x402_node` (one anvil per session) and
`x402_peer` (a fresh token per test, so balances and nonces never leak between tests).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from payments.paidllm import serve_loopback
from tests.peers.anvil import Anvil, rpc_call, start_anvil, stop_anvil

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "wallet" / "contracts" / "CreditToken3009.json"
TOKEN_NAME = "Selfpub Credit"
TOKEN_SYMBOL = "SPC"
TOKEN_VERSION = "1"  # CreditToken3009.VERSION: the EIP-712 domain version
AGENT, PAYERS, FACILITATOR = 1, (2, 3, 4, 5, 6, 7), 9
PAYER_FUNDS_UNITS = 10**24  # a million credits at 18 decimals


def token_artifact() -> dict:
    """ABI and bytecode of CreditToken3009 (compiled by wallet/contracts/compile.js, committed)."""
    return json.loads(ARTIFACT.read_text(encoding="utf-8"))


@dataclass
class X402Peer:
    """A deployed CreditToken3009 on anvil and the SDK's exact-EVM facilitator settling on it."""

    node: Anvil
    w3: Web3
    token: str
    decimals: int
    facilitator: Any = field(repr=False)  # x402.x402FacilitatorSync
    name: str = TOKEN_NAME
    version: str = TOKEN_VERSION

    @property
    def network(self) -> str:
        """CAIP-2 id of the chain, as x402 names it."""
        return f"eip155:{self.node.chain_id}"

    @property
    def owner(self) -> str:
        return self.node.accounts[0]

    @property
    def agent(self) -> str:
        """The payee: the agent's wallet address."""
        return self.node.accounts[AGENT]

    @property
    def agent_key(self) -> str:
        return self.node.keys[AGENT]

    @property
    def facilitator_address(self) -> str:
        return self.node.accounts[FACILITATOR]

    @property
    def facilitator_key(self) -> str:
        return self.node.keys[FACILITATOR]

    def payer(self, i: int = 0) -> LocalAccount:
        """The i-th funded payer account."""
        return Account.from_key(self.node.keys[PAYERS[i]])

    def contract(self):  # noqa: ANN201 - a web3 Contract
        return self.w3.eth.contract(address=self.token, abi=token_artifact()["abi"])

    def mint(self, to: str, units: int) -> None:
        tx = self.contract().functions.mint(to, units).transact({"from": self.owner})
        self.w3.eth.wait_for_transaction_receipt(tx)

    def balance_of(self, address: str) -> int:
        return int(self.contract().functions.balanceOf(address).call())

    def authorization_used(self, authorizer: str, nonce: bytes) -> bool:
        return bool(self.contract().functions.authorizationState(authorizer, nonce).call())

    def mine(self, blocks: int = 1) -> None:
        rpc_call(self.node.url, "anvil_mine", [hex(blocks)])

    def price(self, units: int) -> dict:
        """An x402 AssetAmount in this token: what a route's `price` or a requirement's amount takes."""
        return {"amount": str(units), "asset": self.token, "extra": {"name": self.name, "version": self.version}}

    def paying_client(self, i: int = 0, *, max_units: int | None = None):  # noqa: ANN201 - an x402Client
        """The SDK's async client paying from payer i, allowed this token (capped at max_units)."""
        from x402 import x402Client
        from x402.mechanisms.evm import EthAccountSigner
        from x402.mechanisms.evm.exact import register_exact_evm_client

        client = register_exact_evm_client(x402Client(), EthAccountSigner(self.payer(i)), networks=self.network)
        asset: dict = {"network": self.network, "asset": self.token}
        if max_units is not None:
            asset["max_amount_per_payment"] = str(max_units)
        client.set_spend_controls({"allowed_assets": [asset], "max_amount_per_payment": False})
        return client


def build_facilitator(rpc_url: str, key: str, network: str, *, confirmation_timeout: float = 20.0):  # noqa: ANN201
    """The SDK's sync facilitator with the exact EVM scheme on `network`, signing settlements with `key`."""
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator

    signer = FacilitatorWeb3Signer(private_key=key, rpc_url=rpc_url, confirmation_timeout_seconds=confirmation_timeout)
    return register_exact_evm_facilitator(x402FacilitatorSync(), signer, networks=network)


def deploy_x402(node: Anvil, *, decimals: int = 18, payer_units: int = PAYER_FUNDS_UNITS) -> X402Peer:
    """Deploy a fresh CreditToken3009, fund the payers and build the SDK's facilitator for it."""
    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 10}))
    art = token_artifact()
    ctor = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(TOKEN_NAME, TOKEN_SYMBOL, decimals)
    receipt = w3.eth.wait_for_transaction_receipt(ctor.transact({"from": node.accounts[0]}))
    token = Web3.to_checksum_address(receipt["contractAddress"])
    facilitator = build_facilitator(node.url, node.keys[FACILITATOR], f"eip155:{node.chain_id}")
    peer = X402Peer(node, w3, token, decimals, facilitator)
    for i in range(len(PAYERS)):
        peer.mint(peer.payer(i).address, payer_units)
    return peer


def random_nonce() -> bytes:
    """A fresh 32-byte EIP-3009 nonce."""
    return secrets.token_bytes(32)


# -- the facilitator over HTTP (the "external facilitator URL" path) ---------------------------


def facilitator_app(facilitator: Any):  # noqa: ANN201, ANN401 - a Starlette app
    """A Starlette app serving the SDK facilitator's /verify, /settle and /supported (x402 HTTP facilitator API)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from x402.schemas import PaymentPayload, PaymentRequirements

    def dump(model: Any) -> dict:  # noqa: ANN401
        return model.model_dump(by_alias=True, exclude_none=True, mode="json")

    async def call(request: Request, method: str) -> JSONResponse:
        body = await request.json()
        payload = PaymentPayload.model_validate(body["paymentPayload"])
        requirements = PaymentRequirements.model_validate(body["paymentRequirements"])
        return JSONResponse(dump(getattr(facilitator, method)(payload, requirements)))

    async def verify(request: Request) -> JSONResponse:
        return await call(request, "verify")

    async def settle(request: Request) -> JSONResponse:
        return await call(request, "settle")

    async def supported(_: Request) -> JSONResponse:
        return JSONResponse(dump(facilitator.get_supported()))

    return Starlette(routes=[Route("/verify", verify, methods=["POST"]), Route("/settle", settle, methods=["POST"]),
                             Route("/supported", supported)])


def serve_facilitator(peer: X402Peer):  # noqa: ANN201 - a context manager yielding the base URL
    """The peer's facilitator on a loopback port (the product's serve_loopback: uvicorn in a thread)."""
    return serve_loopback(facilitator_app(peer.facilitator))


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def x402_node() -> Iterator[Anvil]:
    """An anvil of its own for x402 tests (reorg tests there disturb no one else), stopped by PID."""
    node = start_anvil()
    yield node
    stop_anvil(node)


@pytest.fixture
def x402_peer(x402_node: Anvil) -> X402Peer:
    """A fresh CreditToken3009 with funded payers and the SDK's facilitator for it."""
    return deploy_x402(x402_node)
