"""An OpenAI-compatible chat server that counts every token it serves.

    server = CountingServer(words=300)
    with server.serve() as base_url:      # http://127.0.0.1:PORT/v1, a real threaded HTTP server
        ...
    server.totals()                       # calls, prompt and completion tokens, per client tag

Replies come from the deterministic stand-in model (bench.side_by_side.model).
Usage is counted with one tokenizer (bench.side_by_side.tokens) and reported
in every response, so a client's ledger can be checked against it. A client
may tag its requests with an `x-bench-client` header (or by the order of runs:
`mark()` starts a new tally) — the server itself treats every client alike.

`revisions` (model.Revisions) makes the reviewer ask for a revision of a
seeded share of topics, alike for every client tag. Options for the other benches: `latency` (seconds to first token and per
completion token, slept in the handler thread), and `fault_every` (every n-th
chat request fails with HTTP 500 reporting the prompt tokens it consumed, with
Retry-After: 0).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.side_by_side import model
from bench.side_by_side.tokens import TokenCounter, request_extras


@dataclass(frozen=True)
class Latency:
    """How long the fake model takes: time to first token plus time per completion token."""

    first_token: float = 0.0
    per_token: float = 0.0

    def of(self, completion_tokens: int) -> float:
        """Seconds to serve a reply of this many tokens."""
        return self.first_token + self.per_token * completion_tokens


@dataclass
class Served:
    """One response the server sent, with the usage it reported."""

    status: int
    prompt_tokens: int
    completion_tokens: int
    model: str
    tag: str
    kind: str  # what was asked for (bench.side_by_side.model.kind_of)
    schema_tokens: int  # of prompt_tokens: the response_format schema / tools sent with the request
    started: float  # time.perf_counter() when the request was read
    finished: float


@dataclass
class Tally:
    """Totals of a run of requests."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    schema_tokens: int = 0
    failed: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [calls, prompt, completion]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class CountingServer:
    """The chat server; see the module docstring."""

    words: int = 300
    latency: Latency = field(default_factory=Latency)
    fault_every: int = 0
    revisions: model.Revisions = field(default_factory=model.Revisions)
    counter: TokenCounter = field(default_factory=TokenCounter)
    served: list[Served] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # paths asked for that this server does not serve
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _n: int = 0
    _tag: str = "default"

    def mark(self, tag: str) -> None:
        """Count the next requests under `tag` (unless they carry an x-bench-client header)."""
        self._tag = tag

    def totals(self, tag: str | None = None) -> Tally:
        """Calls and tokens served (all, or of one tag)."""
        t = Tally()
        with self._lock:
            rows = [s for s in self.served if tag is None or s.tag == tag]
        for s in rows:
            t.calls += 1
            t.failed += s.status != 200
            t.prompt_tokens += s.prompt_tokens
            t.completion_tokens += s.completion_tokens
            t.schema_tokens += s.schema_tokens
            k = t.by_kind.setdefault(s.kind, [0, 0, 0])
            k[0] += 1
            k[1] += s.prompt_tokens
            k[2] += s.completion_tokens
        return t

    # -- one request ---------------------------------------------------------------------

    def chat(self, body: dict[str, Any], tag: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Answer a chat-completions body: (status, headers, JSON)."""
        started = time.perf_counter()
        with self._lock:
            self._n += 1
            n = self._n
        prompt = self.counter.prompt_tokens(body)
        extras = self.counter.count(request_extras(body))
        kind = model.kind_of(body)
        name = str(body.get("model") or "bench-model")
        if self.fault_every and n % self.fault_every == 0:
            # The provider read the prompt, then failed: it reports what it consumed.
            err = {"error": {"message": "bench: injected server error", "type": "server_error"},
                   "usage": {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}}
            self._served(500, prompt, 0, name, tag, kind, extras, started)
            return 500, {"retry-after": "0"}, err
        text = model.answer(body, self.words, tag or self._tag, self.revisions)
        completion = self.counter.completion_tokens(text)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and completion > limit:
            text, completion, finish = self.counter.truncate(text, limit - 1), limit, "length"
        if self.latency.first_token or self.latency.per_token:
            time.sleep(self.latency.of(completion))
        self._served(200, prompt, completion, name, tag, kind, extras, started)
        return 200, {}, {
            "id": f"chatcmpl-bench-{n}",
            "object": "chat.completion",
            "created": 1_700_000_000 + n,
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def _served(self, status: int, prompt: int, completion: int, name: str, tag: str | None, kind: str, extras: int,
                started: float) -> None:
        with self._lock:
            self.served.append(Served(status, prompt, completion, name, tag or self._tag, kind, extras, started,
                                      time.perf_counter()))

    # -- HTTP ---------------------------------------------------------------------------

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve on a free port of 127.0.0.1; yields the base_url (".../v1")."""
        server = ThreadingHTTPServer((host, port), _handler(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="counting-llm", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _handler(srv: CountingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, json.dumps({"object": "list", "data": [
                    {"id": "bench-model", "object": "model", "owned_by": "bench"}]}).encode())
                return
            srv.unknown.append(f"GET {self.path}")
            self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.split("?", 1)[0].rstrip("/").endswith("/chat/completions"):
                srv.unknown.append(f"POST {self.path}")
                self._send(404, b'{"error": {"message": "only /v1/chat/completions is served"}}')
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, b'{"error": {"message": "body is not JSON"}}')
                return
            status, headers, out = srv.chat(body, self.headers.get("x-bench-client"))
            if status == 200 and body.get("stream"):
                self._stream(out, bool((body.get("stream_options") or {}).get("include_usage")))
                return
            self._send(status, json.dumps(out).encode(), headers)

        def _stream(self, out: dict[str, Any], include_usage: bool) -> None:
            choice = out["choices"][0]
            base = {k: out[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
            chunks = [
                base | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": choice["message"]["content"]},
                                     "finish_reason": None}]},
                base | {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
            ]
            if include_usage:
                chunks.append(base | {"choices": [], "usage": out["usage"]})
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send(200, payload.encode(), content_type="text/event-stream")

    return Handler
