"""A fake OpenAI-compatible chat server: queued replies, reported usage, injected faults.

Two ways to use one `FakeOpenAI`:

    fake.client()                      an AsyncOpenAI over an httpx MockTransport (unit tests)
    with fake.serve() as base_url:     a real threaded HTTP server on 127.0.0.1 (daemon, e2e, bench)

Every response reports usage (unless a reply is queued with usage=None).
Faults: `Fault.status(429, retry_after=2)`, `Fault.status(500, usage=(12, 0))`,
`Fault.timeout()`, `Fault.malformed()`, `Fault.reset()`, `Fault.refused()` (MockTransport only: the
connection is refused, nothing was sent), `Fault.late(delay, usage)` (the answer is generated and
billed, then the server stalls `delay` seconds before writing it: a client timeout after the fact).

`billed` is what a provider would charge: the usage of every answer the fake generated, delivered
or not (a 200's usage, a late answer's usage, an error's reported usage).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import openai

# host:port of fake servers running now: the agents conftest lets requests to these through.
SERVING: set[str] = set()

Reply = str | dict | Callable[[dict], "str | dict"]


@dataclass(frozen=True)
class Fault:
    """One injected failure, answered instead of a reply."""

    kind: str  # status | timeout | malformed | reset | refused | late
    status_code: int = 500
    retry_after: float | None = None
    usage: tuple[int, int] | None = None  # reported in the error body, when set
    delay: float = 5.0  # server mode, timeout: how long to stall before answering

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None, usage: tuple[int, int] | None = None) -> Fault:
        """An HTTP error status, optionally with Retry-After and reported usage."""
        return cls("status", code, retry_after, usage)

    @classmethod
    def timeout(cls, delay: float = 5.0) -> Fault:
        """No answer in time (MockTransport: ReadTimeout; server: stall `delay` seconds)."""
        return cls("timeout", delay=delay)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 with a body that is not JSON."""
        return cls("malformed", 200)

    @classmethod
    def reset(cls) -> Fault:
        """The connection drops after the request was received, without a response."""
        return cls("reset")

    @classmethod
    def refused(cls) -> Fault:
        """The connection is refused: the request never left (MockTransport: ConnectError)."""
        return cls("refused")

    @classmethod
    def late(cls, delay: float = 5.0, usage: tuple[int, int] = (10, 5)) -> Fault:
        """Generate and bill the answer, then stall `delay` seconds before writing it (MockTransport: ReadTimeout)."""
        return cls("late", 200, usage=usage, delay=delay)


@dataclass
class _Queued:
    reply: Reply | Fault
    usage: tuple[int, int] | None


@dataclass
class Seen:
    """One request the fake received (the Authorization header is not kept)."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.body.get("messages", [])


class FakeOpenAI:
    """Answers /v1/chat/completions from a queue, then with the default reply."""

    def __init__(self, default: Reply = "ok", usage: tuple[int, int] | None = (10, 5), models: tuple[str, ...] = ()):
        self.default = default
        self.default_usage = usage
        self.models = models
        self.history: list[Seen] = []
        self._queue: deque[_Queued] = deque()
        self._lock = threading.Lock()
        self._count = 0
        self.billed: list[tuple[int, int]] = []  # usage of every answer generated, delivered or not
        self.received = threading.Event()  # set at every chat request (a test may wait for one in flight)

    # -- scripting ----------------------------------------------------------------

    def enqueue(self, reply: Reply | Fault, usage: tuple[int, int] | None | str = "default") -> FakeOpenAI:
        """Queue one reply (text, a dict sent as JSON text, a callable of the request, or a Fault)."""
        with self._lock:
            self._queue.append(_Queued(reply, self.default_usage if usage == "default" else usage))  # type: ignore[arg-type]
        return self

    def fail(self, fault: Fault, times: int = 1) -> FakeOpenAI:
        """Queue a fault `times` times."""
        for _ in range(times):
            self.enqueue(fault)
        return self

    @property
    def chat_requests(self) -> list[Seen]:
        """The chat-completion requests seen, in order."""
        return [s for s in self.history if s.path.endswith("/chat/completions")]

    # -- the HTTP-free core -----------------------------------------------------------

    def _next(self) -> _Queued:
        with self._lock:
            return self._queue.popleft() if self._queue else _Queued(self.default, self.default_usage)

    def _record(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> dict:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        kept = {k.lower(): v for k, v in headers.items() if k.lower() not in ("authorization", "api-key")}
        with self._lock:
            self.history.append(Seen(method, path, body, kept))
        return body

    def _answer(self, method: str, path: str, body: dict) -> tuple[int, dict[str, str], bytes] | Fault:
        if method == "GET" and path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
            return 200, {}, json.dumps({"object": "list", "data": data}).encode()
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, {}, json.dumps({"error": {"message": "not found", "type": "not_found"}}).encode()
        q = self._next()
        self.received.set()
        if isinstance(q.reply, Fault):
            f = q.reply
            if f.kind == "late":
                self._bill(f.usage)
            if f.kind != "status":
                return f
            headers = {"retry-after": f"{f.retry_after:g}"} if f.retry_after is not None else {}
            err: dict[str, Any] = {"error": {"message": f"fake error {f.status_code}", "type": "fake_error"}}
            if f.usage is not None:
                err["usage"] = _usage(f.usage)
                self._bill(f.usage)
            return f.status_code, headers, json.dumps(err).encode()
        if q.usage is not None:
            self._bill(q.usage)
        reply = q.reply(body) if callable(q.reply) else q.reply
        text = reply if isinstance(reply, str) else json.dumps(reply)
        with self._lock:
            self._count += 1
            n = self._count
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": 1_700_000_000 + n,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }
        if q.usage is not None:
            out["usage"] = _usage(q.usage)
        return 200, {}, json.dumps(out).encode()

    def _bill(self, usage: tuple[int, int]) -> None:
        with self._lock:
            self.billed.append(tuple(usage))

    def late_answer(self, body: dict, f: Fault) -> bytes:
        """The body of a late answer (already billed)."""
        return json.dumps({
            "id": "chatcmpl-fake-late", "object": "chat.completion", "created": 1_700_000_000,
            "model": body.get("model", "fake"), "usage": _usage(f.usage or (0, 0)),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "late"}, "finish_reason": "stop"}],
        }).encode()

    # -- MockTransport mode -------------------------------------------------------------

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """An httpx MockTransport handler."""
        body = self._record(request.method, request.url.path, request.read(), dict(request.headers))
        answer = self._answer(request.method, request.url.path, body)
        if isinstance(answer, Fault):
            if answer.kind in ("timeout", "late"):
                raise httpx2.ReadTimeout("fake: timed out", request=request)
            if answer.kind == "reset":
                raise httpx2.RemoteProtocolError("fake: connection reset", request=request)
            if answer.kind == "refused":
                raise httpx2.ConnectError("fake: connection refused", request=request)
            return httpx2.Response(200, content=b'{"id": "broken', headers={"content-type": "application/json"})
        status, headers, payload = answer
        return httpx2.Response(status, content=payload, headers={"content-type": "application/json", **headers})

    def transport(self) -> httpx2.MockTransport:
        """A MockTransport answering like this fake."""
        return httpx2.MockTransport(self.handler)

    def client(self, base_url: str = "http://fake-llm.test/v1", **kwargs: Any) -> openai.AsyncOpenAI:
        """An AsyncOpenAI wired to this fake through a MockTransport (SDK retries off)."""
        http = httpx2.AsyncClient(transport=self.transport())
        return openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0, http_client=http, **kwargs)

    # -- real server mode -------------------------------------------------------------------

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run a real HTTP server on a free port; yields its base_url (".../v1")."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                body = fake._record(self.command, path, raw, dict(self.headers.items()))
                answer = fake._answer(self.command, path, body)
                if isinstance(answer, Fault):
                    if answer.kind == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.close_connection = True
                        self.connection.close()
                        return
                    if answer.kind == "timeout":
                        time.sleep(answer.delay)
                        answer = (504, {}, b'{"error": {"message": "fake stall", "type": "timeout"}}')
                    elif answer.kind == "late":
                        time.sleep(answer.delay)
                        answer = (200, {}, fake.late_answer(body, answer))
                    elif answer.kind == "refused":  # a served socket cannot be refused: drop it unanswered
                        self.close_connection = True
                        self.connection.close()
                        return
                    else:
                        answer = (200, {}, b'{"id": "broken')
                status, headers, payload = answer
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timed out, or was killed) before the answer
                    self.close_connection = True

            do_GET = _handle
            do_POST = _handle

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True)
        thread.start()
        address = f"{host}:{server.server_address[1]}"
        SERVING.add(address)
        try:
            yield f"http://{address}/v1"
        finally:
            SERVING.discard(address)
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _usage(u: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": u[0], "completion_tokens": u[1], "total_tokens": u[0] + u[1]}
