"""[x402] settings -> the x402 SDK's pieces: the terms of a paid read, the facilitator client, the resource server.

    terms = resolve_terms(settings.x402, settings.wallet, domain=read_domain(w3, asset))
        network  "eip155:<chain id>"   asset  the credit token   pay_to  the wallet's address
        prices   micro-credits per kind, charged in token units rounded up (wallet/units.py)
    facilitator = local_facilitator(rpc_url, signer_key, network)   the SDK's own, run in-process
                | facilitator_on(w3, signer_key, network)            the same on an existing Web3 (embedded)
                | remote_facilitator(url)                            the SDK's HTTP facilitator client
    server = resource_server(facilitator, terms.network)            the SDK's x402ResourceServer, exact EVM
    routes = terms.routes(PATTERNS)                                  the SDK's RoutesConfig, one route per kind
    landed = landed_on(w3, terms)      a payment presented again: did its transfer land? (payment_signed: is it
                                       the payer's authorization for these terms?)

Both facilitator clients are the SDK's async FacilitatorClient seam. A facilitator that could not decide
(its RPC node or its service is down, a timeout, a 5xx) raises FacilitatorUnavailable instead of the
SDK's generic errors, so the paywall answers 503 with Retry-After rather than 402 or 500. A bad payment
is never an exception: the SDK answers it with is_valid=False / success=False (402).

    PaymentsError                       (the room's base; retryable = True)
     +-- FacilitatorUnavailable         the facilitator or its chain node did not answer
     +-- TermsError                     settings that cannot make a paid read (retryable = False)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from config.settings import WalletSettings, X402Settings
from wallet.units import ucr_to_units

log = logging.getLogger(__name__)

SCHEME = "exact"
KINDS = ("article", "brief")
# The site's paid paths as x402 route patterns ([slug]: one path segment), per kind.
PATTERNS = {"article": "/a/[slug].md", "brief": "/api/briefs/[slug]"}
DESCRIPTIONS = {"article": "The full article as Markdown, with its sources", "brief": "The research brief behind an article"}
MIME_TYPES = {"article": "text/markdown", "brief": "application/json"}
DEFAULT_RETRY_AFTER = 30  # seconds a client is asked to wait when the facilitator is down
RPC_TIMEOUT = 10.0


class PaymentsError(Exception):
    """Base of the payments room."""

    retryable: bool | None = True


class FacilitatorUnavailable(PaymentsError):
    """The facilitator (or the chain node behind it) did not answer: the payment was neither refused nor taken."""

    retryable = True

    def __init__(self, operation: str, cause: str, retry_after: int = DEFAULT_RETRY_AFTER):
        super().__init__(f"x402 facilitator unavailable during {operation}: {cause}")
        self.operation = operation
        self.retry_after = retry_after


# The outage a facilitator client met during the current request (the paywall reads it to answer 503):
# the SDK's middleware turns any facilitator exception into a 402 or a 500, so the cause travels beside it.
_OUTAGE: contextvars.ContextVar[list[FacilitatorUnavailable] | None] = contextvars.ContextVar("x402_outage", default=None)


def watch_outages() -> list[FacilitatorUnavailable]:
    """Start collecting, for the current request (context), the outages its facilitator calls meet."""
    seen: list[FacilitatorUnavailable] = []
    _OUTAGE.set(seen)
    return seen


def _noted(exc: FacilitatorUnavailable) -> FacilitatorUnavailable:
    seen = _OUTAGE.get()
    if seen is not None:
        seen.append(exc)
    log.warning("x402 facilitator unavailable", extra={"operation": exc.operation, "reason": str(exc)})
    return exc


class TermsError(PaymentsError):
    """The settings cannot make a paid read (no network, asset or payee); names the key and the fix."""

    retryable = False


@dataclass(frozen=True)
class TokenDomain:
    """The token's EIP-712 domain (what EIP-3009 signatures are made over) and its decimals."""

    name: str
    version: str
    decimals: int


def read_domain(w3: Any, asset: str, *, name: str | None = None, version: str | None = None) -> TokenDomain:  # noqa: ANN401
    """Read name(), version() and decimals() from the token; configured name/version win."""
    abi = [{"name": n, "type": "function", "stateMutability": "view", "inputs": [],
            "outputs": [{"name": "", "type": t}]} for n, t in (("name", "string"), ("version", "string"), ("decimals", "uint8"))]
    token = w3.eth.contract(address=w3.to_checksum_address(asset), abi=abi)
    return TokenDomain(
        name=name if name is not None else token.functions.name().call(),
        version=version if version is not None else token.functions.version().call(),
        decimals=int(token.functions.decimals().call()),
    )


@dataclass(frozen=True)
class Terms:
    """What a paid read costs and where the money goes: resolved from [x402] and [wallet]."""

    network: str
    asset: str
    pay_to: str
    domain: TokenDomain
    prices: Mapping[str, int]  # kind -> micro-credits
    max_timeout_seconds: int = 300

    def units(self, kind: str) -> int:
        """The price of `kind` in token units (rounded up: never less than the configured price)."""
        return ucr_to_units(self.prices[kind], self.domain.decimals).units

    def price(self, kind: str) -> dict:
        """The SDK's AssetAmount for `kind`: atomic amount, the token and its EIP-712 domain."""
        return {"amount": str(self.units(kind)), "asset": self.asset,
                "extra": {"name": self.domain.name, "version": self.domain.version}}

    def routes(self, patterns: Mapping[str, str] = PATTERNS) -> dict:
        """The SDK's RoutesConfig: one route per priced kind (a price of 0 leaves that kind free)."""
        from x402.http import PaymentOption, RouteConfig

        return {
            patterns[kind]: RouteConfig(
                accepts=PaymentOption(scheme=SCHEME, pay_to=self.pay_to, price=self.price(kind), network=self.network,
                                      max_timeout_seconds=self.max_timeout_seconds),
                description=DESCRIPTIONS[kind], mime_type=MIME_TYPES[kind],
            )
            for kind in KINDS if self.prices[kind] > 0
        }


def resolve_terms(x: X402Settings, wallet: WalletSettings, *, domain: TokenDomain) -> Terms:
    """The terms from [x402], its unset keys taken from [wallet] (chain id, token, address)."""
    network = x.network or (f"eip155:{wallet.chain_id}" if wallet.chain_id else None)
    asset = x.asset or wallet.token_address
    pay_to = x.pay_to or wallet.address
    for key, value, default in (("network", network, "chain_id"), ("asset", asset, "token_address"),
                                ("pay_to", pay_to, "address")):
        if not value:
            raise TermsError(f"x402.{key} is unset and so is wallet.{default}: set one of them")
    from web3 import Web3

    return Terms(network, Web3.to_checksum_address(asset), Web3.to_checksum_address(pay_to), domain,
                 {"article": x.price_article, "brief": x.price_brief}, x.max_timeout_seconds)


def x402_pattern(route_path: str) -> str:
    """A Starlette route path as an x402 route pattern ("/a/{slug}.md" -> "/a/[slug].md")."""
    return route_path.replace("{", "[").replace("}", "]")


def chain_id_of(network: str) -> int:
    """The chain id of a CAIP-2 EVM network ("eip155:8453" -> 8453)."""
    return int(network.split(":", 1)[1])


# -- facilitator clients ------------------------------------------------------------------------


class LocalFacilitator:
    """The SDK's facilitator run in-process, behind the async FacilitatorClient seam.

    Its calls block on JSON-RPC, so they run in a worker thread. Before each, the node is asked for its
    head: a node that does not answer makes the call FacilitatorUnavailable, never a refused payment.
    """

    def __init__(self, facilitator: Any, alive: Callable[[], object]):  # noqa: ANN401 - x402FacilitatorSync
        self.facilitator = facilitator
        self._alive = alive

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:  # noqa: ANN401
        try:
            self._alive()
        except Exception as exc:  # noqa: BLE001 - whatever the transport raised, the node did not answer
            raise FacilitatorUnavailable(operation, f"the chain node did not answer ({type(exc).__name__})") from exc
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - the SDK answers bad payments; an exception is an outage
            raise FacilitatorUnavailable(operation, f"{type(exc).__name__}: {str(exc)[:200]}") from exc

    async def verify(self, payload: Any, requirements: Any) -> Any:  # noqa: ANN401
        try:
            return await asyncio.to_thread(self._call, "verify", lambda: self.facilitator.verify(payload, requirements))
        except FacilitatorUnavailable as exc:
            raise _noted(exc) from exc.__cause__

    async def settle(self, payload: Any, requirements: Any) -> Any:  # noqa: ANN401
        try:
            return await asyncio.to_thread(self._call, "settle", lambda: self.facilitator.settle(payload, requirements))
        except FacilitatorUnavailable as exc:
            raise _noted(exc) from exc.__cause__

    def get_supported(self) -> Any:  # noqa: ANN401
        return self.facilitator.get_supported()


def local_facilitator(rpc_url: str, signer_key: str, network: str, *, timeout: float = RPC_TIMEOUT,
                      confirmation_timeout: float = 60.0) -> LocalFacilitator:
    """The SDK's exact-EVM facilitator on `network`, reading and settling through `rpc_url` with `signer_key`."""
    from web3 import Web3
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator

    signer = FacilitatorWeb3Signer(private_key=signer_key, rpc_url=rpc_url,
                                   confirmation_timeout_seconds=confirmation_timeout)
    facilitator = register_exact_evm_facilitator(x402FacilitatorSync(), signer, networks=network)
    probe = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    return LocalFacilitator(facilitator, lambda: probe.eth.block_number)


def facilitator_on(w3: Any, signer_key: str, network: str) -> LocalFacilitator:  # noqa: ANN401
    """The SDK's facilitator settling through an existing Web3 (the embedded in-process chain, which has no URL)."""
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator

    class _OnWeb3(FacilitatorWeb3Signer):
        """The SDK's web3 signer, its HTTP provider swapped for `w3` (it builds one from a URL otherwise)."""

        def __init__(self) -> None:
            super().__init__(private_key=signer_key, rpc_url="http://127.0.0.1:0")
            self._w3 = w3

    facilitator = register_exact_evm_facilitator(x402FacilitatorSync(), _OnWeb3(), networks=network)
    return LocalFacilitator(facilitator, lambda: w3.eth.block_number)


class RemoteFacilitator:
    """The SDK's HTTP facilitator client; a transport failure or a non-200 answer is FacilitatorUnavailable."""

    def __init__(self, client: Any):  # noqa: ANN401 - x402.http.HTTPFacilitatorClient
        self.client = client

    async def _call(self, operation: str, call: Any) -> Any:  # noqa: ANN401
        import httpx
        from x402.http.facilitator_client_base import FacilitatorResponseError

        try:
            return await call
        except FacilitatorResponseError:
            raise  # an answer that is not x402: the SDK's middleware makes it a 502
        except (httpx.TransportError, ValueError) as exc:  # the SDK raises ValueError for a non-200 status
            raise _noted(FacilitatorUnavailable(operation, f"{type(exc).__name__}: {str(exc)[:200]}")) from exc

    async def verify(self, payload: Any, requirements: Any) -> Any:  # noqa: ANN401
        return await self._call("verify", self.client.verify(payload, requirements))

    async def settle(self, payload: Any, requirements: Any) -> Any:  # noqa: ANN401
        return await self._call("settle", self.client.settle(payload, requirements))

    def get_supported(self) -> Any:  # noqa: ANN401
        import httpx

        try:
            return self.client.get_supported()
        except (httpx.TransportError, ValueError) as exc:
            raise _noted(FacilitatorUnavailable("supported", f"{type(exc).__name__}: {str(exc)[:200]}")) from exc


def remote_facilitator(url: str, *, timeout: float = RPC_TIMEOUT) -> RemoteFacilitator:
    """The SDK's HTTP facilitator client for the facilitator service at `url`."""
    from x402.http import FacilitatorConfig, HTTPFacilitatorClient

    return RemoteFacilitator(HTTPFacilitatorClient(FacilitatorConfig(url=url, timeout=timeout)))


def resource_server(facilitator: Any, network: str):  # noqa: ANN201, ANN401 - an x402ResourceServer
    """The SDK's resource server with the exact EVM scheme on `network`, verifying and settling via `facilitator`."""
    from x402 import x402ResourceServer
    from x402.mechanisms.evm.exact import ExactEvmServerScheme

    return x402ResourceServer(facilitator).register(network, ExactEvmServerScheme())


# -- a paid read presented again: is it the payer's, and did its transfer land? ----------------------------

REDELIVERY_LOOKBACK_BLOCKS = 7_200  # how far back a re-presented payment's transfer is looked for


def payment_signed(payload: Any, terms: Terms) -> bool:  # noqa: ANN401 - an x402 PaymentPayload
    """Whether the EIP-3009 authorization in `payload` is signed by its payer (an EOA) for these terms' token and payee.

    The authorization and its signature are public once settled (the transaction's calldata): this proves the
    payment is the one the payer made for us, not who presents it.
    """
    from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
    from x402.mechanisms.evm.types import ExactEIP3009Authorization
    from x402.mechanisms.evm.verify import verify_eoa_signature

    try:
        auth, signature = payload.payload["authorization"], payload.payload["signature"]
        authorization = ExactEIP3009Authorization(
            from_address=auth["from"], to=auth["to"], value=str(auth["value"]), valid_after=str(auth["validAfter"]),
            valid_before=str(auth["validBefore"]), nonce=auth["nonce"])
        if authorization.to.lower() != terms.pay_to.lower():
            return False
        digest = hash_eip3009_authorization(authorization, chain_id_of(terms.network), terms.asset,
                                            terms.domain.name, terms.domain.version)
        return verify_eoa_signature(digest, bytes.fromhex(signature.removeprefix("0x")), authorization.from_address)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def transfer_landed(w3: Any, token: str, payer: str, nonce: str, pay_to: str, units: int,  # noqa: ANN401
                    *, lookback_blocks: int = REDELIVERY_LOOKBACK_BLOCKS) -> str | None:
    """The hash of the transaction that executed the payer's authorization `nonce` paying `units` to `pay_to`.

    Found by the token's AuthorizationUsed(payer, nonce) event and checked by the ERC-20 Transfer in the same
    successful transaction (a cancelled authorization marks the nonce used too, and moves nothing); None if absent.
    """
    from x402.mechanisms.evm.exact.eip3009_utils import verify_eip3009_transfer_event

    from wallet.reads import AUTHORIZATION_USED_TOPIC

    latest = int(w3.eth.block_number)
    logs = w3.eth.get_logs({"address": w3.to_checksum_address(token), "fromBlock": max(latest - lookback_blocks, 0),
                            "toBlock": latest,
                            "topics": [AUTHORIZATION_USED_TOPIC, "0x" + payer.lower().removeprefix("0x").rjust(64, "0"),
                                       nonce.lower()]})
    for entry in logs:
        receipt = w3.eth.get_transaction_receipt(entry["transactionHash"])
        if int(receipt["status"]) == 1 and verify_eip3009_transfer_event(
                list(receipt["logs"]), token, from_address=payer, to=pay_to, value=units):
            tx = entry["transactionHash"]
            return "0x" + (tx if isinstance(tx, str) else tx.hex()).lower().removeprefix("0x")
    return None


def landed_on(w3: Any, terms: Terms) -> Callable[[str, str, int], str | None]:  # noqa: ANN401
    """transfer_landed for these terms' token and payee through `w3`: (payer, nonce, units) -> tx hash or None."""
    return lambda payer, nonce, units: transfer_landed(w3, terms.asset, payer, nonce, terms.pay_to, units)
