"""The chain seam: the credit token's ABI, RPC error classification, chain id check.

Every call to the node goes through `rpc(operation)`, which opens an
OpenTelemetry span and turns transport failures into RpcUnavailable
(classified by exception type, never by message text).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import requests
from opentelemetry import trace
from web3 import Web3
from web3.exceptions import BadResponseFormat, TimeExhausted

from wallet.errors import ChainMismatch, RpcUnavailable

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.wallet")

ARTIFACT = Path(__file__).parent / "contracts" / "CreditToken.json"
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
# The node answered, but not with a JSON-RPC reply: an HTTP error status (429, 5xx) or a body that
# is not JSON (truncated, garbage). Unavailable too: the cycle goes on from the ledger.
ANSWER_ERRORS: tuple[type[BaseException], ...] = (requests.HTTPError, json.JSONDecodeError, BadResponseFormat)


@cache
def token_artifact() -> dict[str, Any]:
    """The committed ABI + bytecode of the credit token (compiled by contracts/compile.js)."""
    return json.loads(ARTIFACT.read_text(encoding="utf-8"))


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


@contextmanager
def rpc(operation: str, **attributes: Any) -> Iterator[trace.Span]:
    """Span around one chain call; transport failures become RpcUnavailable."""
    with tracer.start_as_current_span(f"wallet.{operation}", attributes=attributes) as span:
        try:
            yield span
        except TRANSPORT_ERRORS + ANSWER_ERRORS as exc:
            span.set_attribute("error.type", type(exc).__name__)
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise RpcUnavailable(operation, type(exc).__name__ + (f" {status}" if status else "")) from None


def check_chain_id(w3: Web3, expected: int | None) -> int:
    """The node's chain id; ChainMismatch when it is not the configured one."""
    with rpc("chain_id"):
        actual = int(w3.eth.chain_id)
    if expected is not None and actual != expected:
        raise ChainMismatch(expected, actual)
    return actual
