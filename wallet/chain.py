"""The chain seam: the credit token's ABI, RPC error classification, chain id check.

Every call to the node goes through `rpc(operation)`, which opens an
OpenTelemetry span and classifies what went wrong by exception type and
JSON-RPC error code, never by message text:

    transport failure, HTTP 429/5xx, a body that is not JSON   -> RpcUnavailable
    a JSON-RPC error reply (-32000 server error, ...)          -> RpcErrorReply (an RpcUnavailable: retry later)
    JSON-RPC -32005 "limit exceeded" (EIP-1474)                -> RpcLimited   (an RpcErrorReply)
    "not found" (TransactionNotFound, BlockNotFound)           -> passed through: an answer, not a failure

A caller that must act on a particular reply catches web3's Web3RPCError
inside the block (settlement's send: wallet.paychain; the scanner's log
ranges) and uses `rpc_error()` for its code and message.

A node that answers 429 (or 503) with Retry-After is held off: NodeProvider sends
nothing to it before that time (capped at MAX_RETRY_AFTER_SECONDS) and raises
NodeHeldOff instead, which rpc() reports as RpcUnavailable like the 429 itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import requests
from opentelemetry import trace
from web3 import Web3
from web3.exceptions import BadResponseFormat, BlockNotFound, TimeExhausted, TransactionNotFound, Web3RPCError

from kernel.http import retry_after_from
from wallet.errors import ChainMismatch, RpcErrorReply, RpcLimited, RpcUnavailable

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.wallet")

ARTIFACT = Path(__file__).parent / "contracts" / "CreditToken.json"
MAX_RETRY_AFTER_SECONDS = 60.0  # a node asking for longer is tried again after this much
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix("0x")

# Transport failures: the node is down, refused, reset or too slow.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
    TimeExhausted,
)


class NodeHeldOff(requests.HTTPError):
    """Not sent: the node asked (Retry-After) not to be called before a time that has not come yet."""

    def __init__(self, seconds_left: float):
        self.seconds_left = seconds_left
        super().__init__(f"held off by the node's Retry-After for {seconds_left:.1f} s more")


# The node answered, but not with a JSON-RPC reply: an HTTP error status (429, 5xx) or a body that
# is not JSON (truncated, garbage). Unavailable too: the cycle goes on from the ledger.
ANSWER_ERRORS: tuple[type[BaseException], ...] = (requests.HTTPError, json.JSONDecodeError, BadResponseFormat)
# Answers, not failures: the caller decides what "not found" means (some are Web3RPCError subclasses).
NOT_FOUND: tuple[type[BaseException], ...] = (TransactionNotFound, BlockNotFound)
LIMIT_EXCEEDED = -32005  # EIP-1474: rate limited, or a query (a log range) too large


@cache
def token_artifact(name: str = "CreditToken") -> dict[str, Any]:
    """The committed ABI + bytecode of a credit token (compiled by contracts/compile.js): CreditToken, the
    plain ERC-20, or CreditToken3009, the same with EIP-3009 (what x402's `exact` scheme settles with)."""
    return json.loads((ARTIFACT.parent / f"{name}.json").read_text(encoding="utf-8"))


def token_contract(w3: Web3, address: str):  # noqa: ANN201
    """A web3 contract object for the credit token at `address`."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=token_artifact()["abi"])


def address_topic(address: str) -> str:
    """An address as a 32-byte log topic."""
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def topic_address(topic: bytes | str) -> str:
    """The checksummed address held in a 32-byte log topic."""
    raw = topic.hex() if isinstance(topic, (bytes, bytearray)) else topic
    return Web3.to_checksum_address("0x" + raw.removeprefix("0x")[-40:])


def hexstr(value: bytes | str) -> str:
    """0x-prefixed lowercase hex of a hash."""
    raw = value.hex() if isinstance(value, (bytes, bytearray)) else value
    return "0x" + raw.lower().removeprefix("0x")


def retry_after_seconds(response: Any) -> float | None:
    """Seconds a 429/503 answer asks to wait (Retry-After in seconds or as an HTTP date), else None."""
    if response is None or getattr(response, "status_code", None) not in (429, 503):
        return None
    return retry_after_from(response.headers)


class NodeProvider(Web3.HTTPProvider):
    """Web3's HTTPProvider, honouring the node's Retry-After across calls (bounded)."""

    def __init__(self, *args: Any, max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
                 clock: Callable[[], float] = time.monotonic, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self._clock = clock
        self._not_before = 0.0
        self._lock = threading.Lock()

    def make_request(self, method: Any, params: Any) -> Any:
        """Send unless held off; a 429/503 with Retry-After holds the node off for later calls."""
        with self._lock:
            left = self._not_before - self._clock()
        if left > 0:
            raise NodeHeldOff(left)
        try:
            return super().make_request(method, params)
        except requests.HTTPError as exc:
            wait = retry_after_seconds(exc.response)
            if wait is not None:
                with self._lock:
                    self._not_before = max(self._not_before, self._clock() + min(wait, self.max_retry_after))
            raise


def rpc_error(exc: Web3RPCError) -> tuple[int | None, str]:
    """The JSON-RPC error code and message of a node's error reply."""
    reply = exc.rpc_response if isinstance(getattr(exc, "rpc_response", None), dict) else {}
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    code = error.get("code")
    message = error.get("message") or getattr(exc, "message", None) or str(exc)
    return (int(code) if isinstance(code, int) else None), str(message)


@contextmanager
def rpc(operation: str, **attributes: Any) -> Iterator[trace.Span]:
    """Span around one chain call; transport failures and JSON-RPC error replies become RpcUnavailable."""
    with tracer.start_as_current_span(f"wallet.{operation}", attributes=attributes) as span:
        try:
            yield span
        except NOT_FOUND:
            raise
        except TRANSPORT_ERRORS + ANSWER_ERRORS as exc:
            span.set_attribute("error.type", type(exc).__name__)
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise RpcUnavailable(operation, type(exc).__name__ + (f" {status}" if status else "")) from None
        except Web3RPCError as exc:
            # The node answered, with an error: classified by its code; the daemon retries at the next run.
            code, message = rpc_error(exc)
            span.set_attribute("error.type", type(exc).__name__)
            span.set_attribute("rpc.jsonrpc.error_code", code if code is not None else 0)
            raise (RpcLimited if code == LIMIT_EXCEEDED else RpcErrorReply)(operation, code, message) from None


def check_chain_id(w3: Web3, expected: int | None) -> int:
    """The node's chain id; ChainMismatch when it is not the configured one."""
    with rpc("chain_id"):
        actual = int(w3.eth.chain_id)
    if expected is not None and actual != expected:
        raise ChainMismatch(expected, actual)
    return actual
