"""An x402-protected OpenAI-compatible stand-in: payments/paidllm.py (the SDK's payment middleware) in front of
FakeOpenAI, on 127.0.0.1.

    with serve_paid_llm(fake, peer, price_units=..., pay_to=...) as base_url:   ".../v1"
        POST /v1/chat/completions   no payment: 402 with the SDK's requirements (exact, peer's token)
                                    a payment: the SDK's resource server verifies and settles it through
                                    the SDK's facilitator on anvil (tests/peers/x402.py), then FakeOpenAI
                                    answers, with PAYMENT-RESPONSE (the settlement's tx hash)

The server is payments.paidllm.serve_loopback (uvicorn in a thread, stopped at exit); its host:port is in
tests.fakes.openai.SERVING so the suite's LLM guard lets the metered client reach it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from payments.paidllm import CHAT, paid_chat_app, serve_loopback
from payments.x402 import LocalFacilitator, resource_server
from tests.fakes.openai import SERVING, FakeOpenAI
from tests.peers.x402 import X402Peer


def paid_llm_app(fake: FakeOpenAI, peer: X402Peer, *, price_units: int, pay_to: str, timeout: int = 300) -> Any:  # noqa: ANN401
    """A Starlette app: FakeOpenAI's chat completions behind the SDK's payment middleware (payments/paidllm.py)."""
    facilitator = LocalFacilitator(peer.facilitator, lambda: peer.w3.eth.block_number)

    async def answer(body: bytes) -> tuple[int, bytes]:
        reply = fake.handler(httpx2.Request("POST", f"http://paid-llm{CHAT}", content=body,
                                            headers={"content-type": "application/json"}))
        return reply.status_code, reply.content

    return paid_chat_app(answer, resource_server(facilitator, peer.network), network=peer.network, pay_to=pay_to,
                         price=peer.price(price_units), timeout=timeout)


@contextmanager
def serve_paid_llm(fake: FakeOpenAI, peer: X402Peer, *, price_units: int, pay_to: str) -> Iterator[str]:
    """The paid stand-in on a loopback port; yields its base_url (".../v1")."""
    with serve_loopback(paid_llm_app(fake, peer, price_units=price_units, pay_to=pay_to)) as base:
        hostport = base.removeprefix("http://")
        SERVING.add(hostport)
        try:
            yield f"{base}/v1"
        finally:
            SERVING.discard(hostport)
