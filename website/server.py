"""The site's own listener: uvicorn serving the ASGI app as a task in the daemon's event loop.

    SiteServer(app, bind, port).start()   uvicorn.Server.serve() as a task; returns once bound
                                          (SiteStartError when it cannot bind: the port is taken)
    .stop()                               should_exit, wait STOP_SECONDS, then force_exit

Limits (a flood or a slow client costs a bounded amount):
    MAX_HEAD_BYTES      request line + headers: beyond, a 431 and the connection closed (h11's own
                        bound, h11_max_incomplete_event_size, only sees heads split across reads)
    HEAD_TIMEOUT        a request's line and headers must arrive within this many seconds of the
                        connection (or of the previous answer): a trickling client is cut off
    KEEP_ALIVE_SECONDS  an idle kept-alive connection is closed after this
    MAX_CONNECTIONS     connections + requests in flight (limit_concurrency): beyond, a 503
Signals belong to the daemon: the server installs no handler of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("selfpub.website")

MAX_HEAD_BYTES = 16_384
HEAD_TIMEOUT = 10.0
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 64
BACKLOG = 128
STOP_SECONDS = 5.0


class SiteStartError(RuntimeError):
    """The site's listener could not start (e.g. its port is taken): the message names the address."""

    retryable: bool | None = None  # like a config error: the daemon stops and says why


HEAD_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
                  b"content-length: 16\r\nconnection: close\r\n\r\nhead too large\r\n")


def _head_too_large(pending: bytes) -> bool:
    """True when the bytes of a request head received so far do not end within MAX_HEAD_BYTES."""
    ends = [i for i in (pending.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4), pending.find(b"\n\n", 0, MAX_HEAD_BYTES + 2))
            if i >= 0]
    return (min(ends) if ends else len(pending)) > MAX_HEAD_BYTES


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a size bound and a deadline for every request head.

    uvicorn has no deadline before the first request, and a keep-alive timer that any byte
    cancels; h11 bounds only a head that arrives in pieces. Both are per request here.
    """

    head_timeout = HEAD_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._armed_for: object = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._cancel_head_timer()
        self._armed_for = self.cycle  # the deadline is met once a newer request cycle starts
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if self.cycle is self._armed_for and idle and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and _head_too_large(self.conn.trailing_data[0] + data):
            self._cancel_head_timer()
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()
            return
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._armed_for:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon's own SIGTERM handler stops us through stop()


def server_config(app: object, bind: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration with the site's limits (no logging setup, no lifespan, no Server header)."""
    return uvicorn.Config(
        app, host=bind, port=port, http=BoundedH11, lifespan="off", log_config=None, access_log=False,
        server_header=False, h11_max_incomplete_event_size=MAX_HEAD_BYTES, limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS, backlog=BACKLOG, timeout_graceful_shutdown=int(STOP_SECONDS),
        ws="none",
    )


class SiteServer:
    """The site's listener, started and stopped by the daemon (or a test) on its own loop."""

    def __init__(self, app: object, bind: str = "127.0.0.1", port: int = 8788):
        self.bind = bind
        self.port = port
        self._server = _Server(server_config(app, bind, port))
        self._task: asyncio.Task | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 picks a free one)."""
        for server in self._server.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                return host, port
        return self.bind, self.port

    async def start(self) -> None:
        """Serve in the background; return once listening, or raise SiteStartError."""
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="site")
        while not self._server.started:
            if self._task.done():
                self._task = None
                raise SiteStartError(f"the site could not listen on {self.bind}:{self.port} "
                                     "(is the port taken? set site.port)")
            await asyncio.sleep(0.01)
        host, port = self.address
        log.info("site listening", extra={"bind": host, "port": port})

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn exits this way when it cannot bind
            log.error("site listener failed to start", extra={"bind": self.bind, "port": self.port})

    async def stop(self) -> None:
        """Stop accepting, let answers in flight finish (STOP_SECONDS at most), then close."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
        if not done:
            self._server.force_exit = True
            await asyncio.wait({task}, timeout=STOP_SECONDS)
        log.info("site stopped")
