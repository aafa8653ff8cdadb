"""The status server: GET /healthz, /metrics and / (an HTML status page with an inline SVG chart).

A small asyncio HTTP/1.1 server (one request per connection), bound to
settings.http.bind, 127.0.0.1 unless told otherwise. Only GET is served;
anything else (HEAD included) gets 405. The page loads nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from kernel.money import UCR_PER_CREDIT, format_credits
from daemon.status import ErrorRow, Point, PostRow
from daemon.threads import in_thread

if TYPE_CHECKING:
    from daemon.service import Service

log = logging.getLogger("selfpub.http")
MAX_HEAD_BYTES = 16_384
READ_TIMEOUT_SECONDS = 10.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
           503: "Service Unavailable"}


class _Figures:
    """The values of one scrape, gathered off the event loop."""

    def __init__(self, service: Service):
        s = service
        f = s.figures
        snap = f.snapshot
        self.balance = snap.wallet if snap else 0
        self.available = snap.available if snap else 0
        self.reserved = snap.reserved if snap else 0
        self.liabilities = snap.liabilities if snap else 0
        self.runway = f.runway_days
        self.spend = s.reader.spend_by_agent()
        self.income = s.reader.income_total()
        self.posts = s.reader.posts_by_platform()
        self.errors = s.reader.error_counts()
        self.paused = s.state.value == "PAUSED"
        self.interrupted = s.reader.interrupted_count()
        self.health = list(s.book.families(self.interrupted))


class _Collector:
    """Turns one _Figures into prometheus metric families (credits as floats only at this edge)."""

    def __init__(self, figures: _Figures):
        self.f = figures

    def collect(self) -> Iterable[GaugeMetricFamily]:
        f = self.f

        def credits(name: str, doc: str, ucr: int) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=ucr / UCR_PER_CREDIT)

        yield credits("selfpub_balance_credits", "Wallet balance in credits", f.balance)
        yield credits("selfpub_available_credits", "Wallet minus provider liabilities minus reservations", f.available)
        yield credits("selfpub_reserved_credits", "Credits held by open reservations", f.reserved)
        yield credits("selfpub_liabilities_credits", "Compute owed to providers, not yet paid", f.liabilities)
        yield credits("selfpub_income_credits", "All income so far", f.income)
        spend = GaugeMetricFamily("selfpub_spend_credits", "Compute spend by agent", labels=["agent"])
        for agent, ucr in sorted(f.spend.items()):
            spend.add_metric([agent], ucr / UCR_PER_CREDIT)
        yield spend
        posts = GaugeMetricFamily("selfpub_posts", "Posts published by platform", labels=["platform"])
        for platform, n in sorted(f.posts.items()):
            posts.add_metric([platform], n)
        yield posts
        errors = GaugeMetricFamily("selfpub_errors", "Failed job runs by job", labels=["job"])
        for job, n in sorted(f.errors.items()):
            errors.add_metric([job], n)
        yield errors
        yield GaugeMetricFamily("selfpub_paused", "1 when the loop is paused", value=1 if f.paused else 0)
        if f.runway is not None:
            yield GaugeMetricFamily("selfpub_runway_days", "Days the balance lasts at the recent spend", value=f.runway)
        yield from f.health  # cycle outcomes, dependency failures, last successes (daemon/health.py)


def metrics_text(figures: _Figures) -> bytes:
    """The prometheus text exposition of one set of figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(figures))  # type: ignore[arg-type]
    return generate_latest(registry)


# -- the status page ----------------------------------------------------------------

CHART_W, CHART_H, PAD = 720, 260, 44
COLOURS = {"balance": "#2563eb", "spend": "#dc2626", "income": "#16a34a"}


def chart_svg(points: list[Point]) -> str:
    """An inline SVG line chart of balance, cumulative spend and income (credits over time)."""
    if not points:
        points = [Point(datetime.now(timezone.utc), 0, 0, 0)]
    t0 = points[0].at.timestamp()
    t1 = max(points[-1].at.timestamp(), t0 + 1)
    values = [v for p in points for v in (p.balance, p.spend, p.income)]
    lo, hi = min(0, *values), max(1, *values)
    span = hi - lo or 1

    def x(p: Point) -> float:
        return PAD + (p.at.timestamp() - t0) / (t1 - t0) * (CHART_W - 2 * PAD)

    def y(v: int) -> float:
        return CHART_H - PAD - (v - lo) / span * (CHART_H - 2 * PAD)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" '
           f'height="{CHART_H}" role="img" aria-label="balance, spend and income over time">',
           f'<rect x="0" y="0" width="{CHART_W}" height="{CHART_H}" fill="#ffffff"/>']
    for i in range(5):
        v = lo + span * i // 4
        yy = y(v)
        out.append(f'<line x1="{PAD}" y1="{yy:.1f}" x2="{CHART_W - PAD}" y2="{yy:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="4" y="{yy + 4:.1f}" font-size="10" fill="#374151">{html.escape(format_credits(v))}</text>')
    out.append(f'<line x1="{PAD}" y1="{CHART_H - PAD}" x2="{CHART_W - PAD}" y2="{CHART_H - PAD}" stroke="#111827"/>')
    out.append(f'<text x="{PAD}" y="{CHART_H - 20}" font-size="10" fill="#374151">{points[0].at:%Y-%m-%d %H:%M}</text>')
    out.append(f'<text x="{CHART_W - PAD - 90}" y="{CHART_H - 20}" font-size="10" fill="#374151">'
               f'{points[-1].at:%Y-%m-%d %H:%M}</text>')
    for n, (name, colour) in enumerate(COLOURS.items()):
        coords = []
        prev = None
        for p in points:  # step line: money changes at a transaction and stays
            v = getattr(p, name)
            if prev is not None:
                coords.append(f"{x(p):.1f},{y(prev):.1f}")
            coords.append(f"{x(p):.1f},{y(v):.1f}")
            prev = v
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{" ".join(coords)}"/>')
        lx = PAD + n * 120
        out.append(f'<rect x="{lx}" y="8" width="14" height="14" fill="{colour}"/>')
        out.append(f'<text x="{lx + 20}" y="20" font-size="12" fill="#111827">{name}</text>')
    out.append("</svg>")
    return "".join(out)


PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 12px} h2{font-size:16px;margin:24px 0 8px}
.state{display:inline-block;padding:4px 10px;border-radius:6px;color:#fff;font-weight:600}
.RUNNING{background:#16a34a}.PAUSED{background:#d97706}.DEGRADED{background:#b91c1c}.STOPPING,.STARTING{background:#6b7280}
.cards{display:flex;gap:16px;margin:12px 0}.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #e5e7eb;padding:4px 10px;text-align:left;font-size:13px}
th{background:#eef2ff}.err{color:#b91c1c}
"""


def status_page(service: Service, points: list[Point], posts: list[PostRow], errors: list[ErrorRow]) -> str:
    """The HTML status page: state, balance, runway, chart, recent posts and errors."""
    e = html.escape
    f = service.figures
    snap = f.snapshot
    state, why = service.display_state()
    reason = f' <span>{e(why)}</span>' if why else ""
    runway = f"{f.runway_days:.1f} days" if f.runway_days is not None else "n/a (no recent spend)"
    last = (f"{f.last_cycle_at:%Y-%m-%d %H:%M} UTC ({e(str(f.last_cycle_outcome))})" if f.last_cycle_at else "never")
    cards = [("available", format_credits(snap.available) + " cr" if snap else "?"),
             ("wallet", format_credits(snap.wallet) + " cr" if snap else "?"),
             ("owed to providers", format_credits(snap.liabilities) + " cr" if snap else "?"),
             ("runway", runway), ("last cycle", last),
             ("cycles without progress", str(service.book.no_progress)),
             ("interrupted job runs", str(service.interrupted))]
    rows_posts = "".join(
        f"<tr><td>{p.when:%Y-%m-%d %H:%M}</td><td>{e(p.platform)}</td><td>{e(p.title)}</td>"
        f"<td>{format_credits(p.cost)}</td><td>{format_credits(p.earnings)}</td></tr>" for p in posts
    ) or '<tr><td colspan="5">no posts yet</td></tr>'
    rows_errors = "".join(
        f'<tr><td>{r.when:%Y-%m-%d %H:%M}</td><td>{e(r.job)}</td><td class="err">{e(r.outcome)}</td>'
        f"<td>{e(r.detail)}</td></tr>" for r in errors
    ) or '<tr><td colspan="4">no errors</td></tr>'
    note = f'<p class="err">{e(service.reload_note)}</p>' if service.reload_note else ""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>selfpub · {e(service.settings.persona)}</title><style>{PAGE_CSS}</style></head><body>"
        f"<h1>selfpub · {e(service.settings.persona)}</h1>"
        f'<div><span class="state {e(state)}">{e(state)}</span>{reason}</div>{note}'
        '<div class="cards">' + "".join(f'<div class="card">{e(k)}<b>{e(v)}</b></div>' for k, v in cards) + "</div>"
        "<h2>Balance, spend and income (credits, last 30 days)</h2>" + chart_svg(points) +
        "<h2>Recent posts</h2><table><tr><th>when</th><th>platform</th><th>post</th><th>cost (cr)</th>"
        f"<th>earnings (cr)</th></tr>{rows_posts}</table>"
        f"<h2>Recent errors</h2><table><tr><th>when</th><th>job</th><th>outcome</th><th>detail</th></tr>{rows_errors}</table>"
        "</body></html>"
    )


# -- the server ---------------------------------------------------------------------


class StatusServer:
    """Serves /healthz, /metrics and / for one Service."""

    def __init__(self, service: Service, bind: str = "127.0.0.1", port: int = 8787):
        self.service = service
        self.bind = bind
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port) — port 0 in the settings picks a free one."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Listen on bind:port."""
        self._server = await asyncio.start_server(self._handle, self.bind, self.port, reuse_address=True)
        log.info("status server listening", extra={"bind": self.address[0], "port": self.address[1]})

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        try:
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _version = line.split(" ", 2)
        except ValueError:
            await self._send(writer, 400, b"bad request\n", "text/plain; charset=utf-8")
            return
        path = target.split("?", 1)[0]
        if method != "GET":
            await self._send(writer, 405, b"method not allowed\n", "text/plain; charset=utf-8", {"Allow": "GET"})
            return
        try:
            status, body, ctype = await self._route(path)
        except Exception:
            log.exception("status server error", extra={"path": path})
            status, body, ctype = 500, b"internal error\n", "text/plain; charset=utf-8"
        await self._send(writer, status, body, ctype, length=len(body))

    async def _route(self, path: str) -> tuple[int, bytes, str]:
        s = self.service
        if path == "/healthz":
            h = await s.fresh_health()
            return (200 if h.ok else 503), (h.reason + "\n").encode(), "text/plain; charset=utf-8"
        if path == "/metrics":
            await s.refresh()
            figures = await in_thread(_Figures, s)
            return 200, metrics_text(figures), CONTENT_TYPE_LATEST
        if path in ("/", "/index.html"):
            await s.refresh()
            points, posts, errors, s.interrupted = await in_thread(
                lambda: (s.reader.series(), s.reader.recent_posts(), s.reader.recent_errors(),
                         s.reader.interrupted_count()))
            return 200, status_page(s, points, posts, errors).encode(), "text/html; charset=utf-8"
        return 404, b"not found\n", "text/plain; charset=utf-8"

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str,
                    headers: dict[str, str] | None = None, length: int | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, '')}", f"Content-Type: {ctype}",
                 f"Content-Length: {len(body) if length is None else length}", "Connection: close",
                 "Cache-Control: no-store", "X-Content-Type-Options: nosniff",
                 "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
