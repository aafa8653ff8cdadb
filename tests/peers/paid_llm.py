"""An x402-protected OpenAI-compatible stand-in: the SDK's payment middleware in front of FakeOpenAI, on 127.0.0.1.

    with serve_paid_llm(fake, peer, price_units=..., pay_to=...) as base_url:   ".../v1"
        POST /v1/chat/completions   no payment: 402 with the SDK's requirements (exact, peer's token)
                                    a payment: the SDK's resource server verifies and settles it through
                                    the SDK's facilitator on anvil (tests/peers/x402.py), then FakeOpenAI
                                    answers, with PAYMENT-RESPONSE (the settlement's tx hash)

The server is uvicorn in a thread, stopped at exit; its host:port is in tests.fakes.openai.SERVING so the
suite's LLM guard lets the metered client reach it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from payments.x402 import LocalFacilitator
from tests.fakes.openai import SERVING, FakeOpenAI
from tests.peers.anvil import free_port
from tests.peers.x402 import X402Peer

CHAT = "/v1/chat/completions"


def paid_llm_app(fake: FakeOpenAI, peer: X402Peer, *, price_units: int, pay_to: str, timeout: int = 300) -> Any:  # noqa: ANN401
    """A Starlette app: FakeOpenAI's chat completions behind the SDK's payment middleware."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from x402 import x402ResourceServer
    from x402.http import PaymentOption, RouteConfig
    from x402.http.middleware.fastapi import payment_middleware
    from x402.mechanisms.evm.exact import ExactEvmServerScheme

    facilitator = LocalFacilitator(peer.facilitator, lambda: peer.w3.eth.block_number)
    server = x402ResourceServer(facilitator).register(peer.network, ExactEvmServerScheme())
    routes = {
        f"POST {CHAT}": RouteConfig(
            accepts=PaymentOption(scheme="exact", pay_to=pay_to, price=peer.price(price_units), network=peer.network,
                                  max_timeout_seconds=timeout),
            description="one chat completion", mime_type="application/json",
        ),
    }

    async def chat(request: Request) -> Response:
        body = await request.body()
        answer = fake.handler(httpx2.Request("POST", f"http://paid-llm{CHAT}", content=body,
                                             headers={"content-type": "application/json"}))
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")

    dispatch = payment_middleware(routes, server, sync_facilitator_on_start=True)
    return Starlette(routes=[Route(CHAT, chat, methods=["POST"])],
                     middleware=[Middleware(BaseHTTPMiddleware, dispatch=dispatch)])


@contextmanager
def serve_paid_llm(fake: FakeOpenAI, peer: X402Peer, *, price_units: int, pay_to: str) -> Iterator[str]:
    """The paid stand-in on a loopback port; yields its base_url (".../v1")."""
    import uvicorn

    port = free_port()
    app = paid_llm_app(fake, peer, price_units=price_units, pay_to=pay_to)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the paid LLM stand-in did not start")
        time.sleep(0.02)
    hostport = f"127.0.0.1:{port}"
    SERVING.add(hostport)
    try:
        yield f"http://{hostport}/v1"
    finally:
        SERVING.discard(hostport)
        server.should_exit = True
        thread.join(10)
