"""A fault-injecting HTTP reverse proxy on 127.0.0.1, one per peer, switched per test.

    proxy = FaultProxy("devto", forem.url).start()
    proxy.set("500")            # every request now answered 500
    proxy.set("429", times=2)   # the next two requests answered 429, then it passes again by itself
    ... daemon runs against proxy.url ...
    proxy.set("pass")           # healed
    proxy.attempts              # every request the daemon made (time, method, path, mode, body)
    proxy.stop()

Faults (FAULTS):
    down       the port is closed: connect() is refused (the proxy records nothing)
    slow       the request is held SLOW_SECONDS (past every client timeout the tests configure),
               then forwarded: the peer does the work, the answer comes too late
    429        answered 429 with Retry-After: RETRY_AFTER, not forwarded
    500        answered 500, not forwarded
    malformed  forwarded; the peer's answer comes back cut short (truncated JSON/XML, 200)
    reset      the request is read in full and forwarded, then the socket is closed with RST
               (SO_LINGER 0) instead of an answer: the classic lost response

Every answer carries `Connection: close`, so no client keeps a pooled connection that
would bypass a later `down`. Answers passed through have the peer's own base URL
rewritten to the proxy's (a PDS names itself in the session's DID document; without
the rewrite the client would switch to the PDS directly after login).
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("down", "slow", "429", "500", "malformed", "reset")
MODES = ("pass", *FAULTS)
SLOW_SECONDS = 2.5
RETRY_AFTER = 2  # seconds, sent with every 429
UPSTREAM_TIMEOUT = 30.0
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host",
        "content-length"}


@dataclass(frozen=True)
class Attempt:
    """One request the proxy received."""

    t: float  # time.monotonic() when the request head arrived
    method: str
    path: str
    mode: str  # the mode the proxy was in
    body: bytes = b""


class FaultProxy:
    """An HTTP/1.1 reverse proxy in front of `upstream` (scheme://host:port) that can misbehave on purpose."""

    def __init__(self, name: str, upstream: str, *, slow_seconds: float = SLOW_SECONDS, retry_after: int = RETRY_AFTER,
                 rewrite: tuple[str, ...] = ()):
        self.name = name
        up = urlsplit(upstream)
        self.upstream_host, self.upstream_port = up.hostname or "127.0.0.1", up.port or 80
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.mode = "pass"
        self.left: int | None = None  # faulted requests left before the proxy heals itself (None: no limit)
        self.attempts: list[Attempt] = []
        self.port = 0
        self._rewrite_from = tuple(dict.fromkeys((f"{up.scheme}://{up.netloc}", *rewrite)))
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's base URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Listen (on a free port the first time, on the same port after a `down`)."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"fault-proxy-{self.name}", daemon=True)
        thread.start()
        self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Close the listening socket (connections are refused from now on)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set(self, mode: str, *, times: int | None = None) -> None:
        """Switch the fault ("pass" heals); "down" closes the port, leaving it re-opens it.

        With `times`, only that many requests meet the fault; the proxy then passes by itself
        (a refused connect never reaches the proxy, so "down" takes no `times`).
        """
        if mode not in MODES:
            raise ValueError(f"unknown fault {mode!r}: use one of {', '.join(MODES)}")
        if times is not None and (mode in ("down", "pass") or times < 1):
            raise ValueError(f"times={times} needs a fault the proxy sees (not down or pass) and times >= 1")
        if mode == "down" and self._httpd is not None:
            self.stop()
        elif mode != "down" and self._httpd is None:
            self.start()
        with self._lock:
            self.mode, self.left = mode, times

    def heal(self) -> None:
        """Back to passing every request through."""
        self.set("pass")

    def faulted(self) -> list[Attempt]:
        """The requests that met a fault."""
        return [a for a in self.attempts if a.mode != "pass"]

    # -- one request -------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        t = time.monotonic()
        h.close_connection = True
        body = _read_body(h)
        with self._lock:
            mode = self.mode
            if mode != "pass" and self.left is not None:
                self.left -= 1
                if self.left <= 0:
                    self.mode, self.left = "pass", None
            self.attempts.append(Attempt(t, h.command, h.path, mode, body))
        if mode == "429":
            return _answer(h, 429, b'{"error": "Too Many Requests", "status": 429}', {"Retry-After": str(self.retry_after)})
        if mode == "500":
            return _answer(h, 500, b'{"error": "Internal Server Error", "status": 500}')
        if mode == "slow":
            time.sleep(self.slow_seconds)
        try:
            status, headers, payload = self._forward(h, body)
        except OSError:
            return _answer(h, 502, b'{"error": "Bad Gateway", "status": 502}')
        if mode == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            return None
        if mode == "malformed":
            payload = payload[: max(1, len(payload) // 3)] if payload else b'{"truncated'
            status = 200 if status >= 400 else status
        try:
            _answer(h, status, payload, headers)
        except OSError:
            pass  # the client gave up (slow): exactly what a timeout looks like from the server
        return None

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
            headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            headers["Content-Length"] = str(len(body))
            conn.request(h.command, h.path, body=body if body or h.command not in ("GET", "HEAD") else None,
                         headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
            for origin in self._rewrite_from:
                payload = payload.replace(origin.encode(), self.url.encode())
            return resp.status, out, payload
        finally:
            conn.close()


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The whole request body (Content-Length or chunked)."""
    if "chunked" in (h.headers.get("transfer-encoding") or "").lower():
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("content-length") or 0)
    return h.rfile.read(length) if length else b""


def _answer(h: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    sent = set()
    for k, v in (headers or {}).items():
        h.send_header(k, v)
        sent.add(k.lower())
    if "content-type" not in sent:
        h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(payload)))
    h.send_header("Connection", "close")
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(payload)
