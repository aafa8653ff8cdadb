"""The site's ASGI app: build_site_app(content, settings, *, middleware=()).

    request
      -> ServerErrorMiddleware (Starlette)  a bug: 500 with a fixed tiny body, never a traceback
      -> Guard                              not GET/HEAD: 405 (Allow: GET, HEAD); a path over
                                            MAX_PATH_BYTES: 404; bad UTF-8 or control characters
                                            in it: 400; security headers on every answer
      -> middleware (the caller's)          e.g. the x402 payment middleware for PAID_PATHS
      -> router                             website/routes.py; no match: the same tiny 404

The app reads only through `content` (published articles) and holds no
state of its own: what a request can learn is what the pages show.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings
from publishers import BLUESKY_APP_URL
from website.content import SiteContent
from website.routes import Pages, SiteConfig, not_found

METHODS = ("GET", "HEAD")
MAX_PATH_BYTES = 1024  # no route is longer: the longest slug is 120 characters
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; base-uri 'none'; "
     b"form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer-when-downgrade"),
]


async def _plain(send: Send, status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bad_path(path: str) -> bool:
    """True for a decoded path no route can have: bad UTF-8 (U+FFFD after decoding) or control characters."""
    return any(c == "\ufffd" or ord(c) < 0x20 or ord(c) == 0x7F for c in path)


class Guard:
    """Outermost filter: methods, path size and shape, security headers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # websockets: none served
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] not in METHODS:
            await _plain(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        if len(raw) > MAX_PATH_BYTES:
            await _plain(send, 404, b"not found\n")
            return
        if bad_path(scope["path"]):
            await _plain(send, 400, b"bad request\n")
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, secured)


async def _not_found(request: Request, exc: HTTPException) -> Response:  # noqa: ARG001
    return not_found()


async def _error(request: Request, exc: Exception) -> Response:  # noqa: ARG001
    return Response(b"internal error\n", status_code=500, media_type="text/plain")


def site_config(settings: Settings) -> SiteConfig:
    """The pages' view of the settings: title, public URL, and the platforms an article may link to."""
    return SiteConfig(title=settings.site.title, public_url=settings.site.public_url,
                      platforms=(settings.publishers.devto.base_url, BLUESKY_APP_URL))


def build_site_app(content: SiteContent, settings: Settings, *, middleware: Sequence[Middleware] = ()) -> Starlette:
    """The read-only site over `content`; `middleware` wraps the routes (inside the Guard), e.g. x402 payments."""
    pages = Pages(content, site_config(settings))
    app = Starlette(
        routes=pages.routes(),
        middleware=[Middleware(Guard), *middleware],
        exception_handlers={404: _not_found, 405: _not_found, Exception: _error},
    )
    app.router.redirect_slashes = False  # "/a/x/" is a 404, not a redirect built from the Host header
    return app
