"""A tiny feed server on 127.0.0.1 for fetch tests: real sockets, scripted routes.

Routes answer with a body (ETag / Last-Modified / 304 handled like a real
server), a redirect, a delay before the answer, or a huge streamed body. The
server records every request's path and headers and the most requests it had
in flight at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.settings import FeedSettings, ResearchSettings


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before the status line
    location: str | None = None  # redirect target
    stream_bytes: int = 0  # > 0: stream this many filler bytes (no Content-Length)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    """Serves scripted routes on 127.0.0.1:<free port> from a background thread."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stream_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                with server._lock:
                    server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: exactly what a size cap does
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> FeedServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kw: object) -> str:
        """Serve a body (or a redirect, delay, stream) at path; returns its URL."""
        self.routes[path] = Route(body=body.encode() if isinstance(body, str) else body, **kw)  # type: ignore[arg-type]
        return self.url(path)

    def add_file(self, path: str, file: Path, **kw: object) -> str:
        """Serve a file's bytes at path."""
        return self.add(path, file.read_bytes(), **kw)

    def requests_to(self, path: str) -> list[Seen]:
        """Requests received for one path, oldest first."""
        return [r for r in self.requests if r.path == path]

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(h.path)
        if route is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if route.delay:
            time.sleep(route.delay)
        if route.location:
            h.send_response(route.status if route.status in (301, 302, 303, 307, 308) else 302)
            h.send_header("Location", route.location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        inm, ims = h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since")
        if (route.etag and inm == route.etag) or (not route.etag and route.last_modified and ims == route.last_modified):
            h.send_response(304)
            if route.etag:
                h.send_header("ETag", route.etag)
            h.end_headers()
            return
        h.send_response(route.status)
        h.send_header("Content-Type", route.content_type)
        if route.etag:
            h.send_header("ETag", route.etag)
        if route.last_modified:
            h.send_header("Last-Modified", route.last_modified)
        for k, v in route.headers.items():
            h.send_header(k, v)
        if route.stream_bytes:
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = b"<item><title>filler</title></item>" * 2000
            sent = 0
            while sent < route.stream_bytes:
                h.wfile.write(chunk)
                sent += len(chunk)
                self.stream_sent[h.path] = sent
            return
        h.send_header("Content-Length", str(len(route.body)))
        h.end_headers()
        h.wfile.write(route.body)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running FeedServer, stopped afterwards."""
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()


def research_settings(**kw: object) -> ResearchSettings:
    """ResearchSettings with short timeouts for tests."""
    return ResearchSettings(**{"fetch_timeout_seconds": 5, **kw})  # type: ignore[arg-type]


def feed(url: str, **kw: object) -> FeedSettings:
    """FeedSettings for a URL."""
    return FeedSettings(url=url, **kw)  # type: ignore[arg-type]


def unchecked_feed(url: str) -> FeedSettings:
    """FeedSettings the config check would refuse (the fetcher must still report, not raise, on them)."""
    return FeedSettings.model_construct(url=url, name=None, tags=())


def rss(*items: tuple[str, str, str], title: str = "Test feed", extra: str = "") -> str:
    """An RSS 2.0 document of (title, link, description) items."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><description>{d}</description>{extra}</item>" for t, link, d in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'
