"""Paid inference: an OpenAI-compatible chat endpoint behind the x402 SDK's payment middleware.

    app = paid_chat_app(answer, server, network=..., pay_to=..., price={amount, asset, extra})
        POST /v1/chat/completions   no payment: 402 with the SDK's requirements (exact, one price per call)
                                    a payment: `server` (payments.x402.resource_server) verifies and settles
                                    it through its facilitator, then answer(body) replies, with
                                    PAYMENT-RESPONSE (the settlement's tx hash)
    answer = forward_to(base_url)   relay the request body to an OpenAI-compatible server (".../v1")
    with serve_loopback(app) as "http://127.0.0.1:<port>"   uvicorn in a thread, stopped at exit

The provider's side of what agents/llm/x402pay.py pays: the demo puts it in front of the embedded model,
and tests/peers/paid_llm.py in front of FakeOpenAI. It books nothing: the payer's wallet does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

CHAT = "/v1/chat/completions"
START_TIMEOUT_SECONDS = 10.0

Answer = Callable[[bytes], Awaitable[tuple[int, bytes]]]  # request body -> (status, JSON body)


def paid_chat_app(answer: Answer, server: Any, *, network: str, pay_to: str, price: dict,  # noqa: ANN401
                  timeout: int = 300) -> Any:  # noqa: ANN401 - a Starlette app
    """A Starlette app: `answer` behind the SDK's payment middleware, `price` (an x402 AssetAmount) a call."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from x402.http import PaymentOption, RouteConfig
    from x402.http.middleware.fastapi import payment_middleware

    routes = {
        f"POST {CHAT}": RouteConfig(
            accepts=PaymentOption(scheme="exact", pay_to=pay_to, price=price, network=network,
                                  max_timeout_seconds=timeout),
            description="one chat completion", mime_type="application/json",
        ),
    }

    async def chat(request: Request) -> Response:
        status, content = await answer(await request.body())
        return Response(content, status_code=status, media_type="application/json")

    dispatch = payment_middleware(routes, server, sync_facilitator_on_start=True)
    return Starlette(routes=[Route(CHAT, chat, methods=["POST"])],
                     middleware=[Middleware(BaseHTTPMiddleware, dispatch=dispatch)])


def forward_to(base_url: str, *, timeout: float = 300.0) -> Answer:
    """An `answer` relaying the chat request to the OpenAI-compatible server at base_url (".../v1")."""
    url = f"{base_url.rstrip('/')}/chat/completions"

    async def answer(body: bytes) -> tuple[int, bytes]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            resp = await client.post(url, content=body, headers={"content-type": "application/json"})
        return resp.status_code, resp.content

    return answer


@contextmanager
def serve_loopback(app: Any) -> Iterator[str]:  # noqa: ANN401
    """Serve `app` on a free 127.0.0.1 port (uvicorn in a thread); yields "http://127.0.0.1:<port>"."""
    import uvicorn

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # a port nothing listens on right now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the app served on 127.0.0.1:{port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
