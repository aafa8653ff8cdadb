"""The status server: GET /healthz, /metrics and / (the operator's console: an HTML page with an SVG chart).

A small asyncio HTTP/1.1 server (one request per connection), bound to
settings.http.bind, 127.0.0.1 unless told otherwise. Reads (GET) are open to
whoever reaches the address; the only writes are the console's (daemon/console.py):

    POST /unlock           the console token (http.console_token) -> a session cookie
    POST /drafts/approve   task=ID     -> `selfpub drafts approve ID`'s code path
    POST /drafts/reject    task=ID, reason=TEXT

each a urlencoded form passed by daemon/csrf.py's Guard (same origin, a fresh one-use
CSRF token, the session; /unlock: the token itself), answered 303 to /. Without a
console token the console is read-only and says how to enable it. Any other method
or path gets 405/404. The page loads nothing from elsewhere and may not be framed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import logging
from urllib.parse import parse_qs, urlsplit
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from kernel.money import UCR_PER_CREDIT, format_credits
from agents.tasks import TaskError
from daemon import console
from daemon.console import ConsoleData
from daemon.csrf import SESSION_MAX_AGE_SECONDS, Guard, cookie_name, cookie_of, own_hosts, same_origin
from daemon.status import Point
from daemon.threads import in_thread
from ledger.reads import Event, event_label
from ledger.sustain import TIERS, SustainState, format_ratio

if TYPE_CHECKING:
    from daemon.service import Service

log = logging.getLogger("selfpub.http")
MAX_HEAD_BYTES = 16_384
MAX_FORM_BYTES = 8_192
READ_TIMEOUT_SECONDS = 10.0
REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Content Too Large",
           415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
WRITES = ("/unlock", "/drafts/approve", "/drafts/reject")
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
NOTICES = {"approved": "Approved: it publishes on the next cycle.", "rejected": "Rejected.",
           "unlocked": "Writes unlocked in this browser."}


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
        self.sustain = f.sustain
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
        yield from _sustain_families(f.sustain)
        yield from f.health  # cycle outcomes, dependency failures, last successes (daemon/health.py)


def _sustain_families(state: SustainState | None) -> Iterable[GaugeMetricFamily]:
    """The sustain rule: the tier in force (one series per tier, 1 for the one in force), income and cost over
    its window, and their ratio (absent while nothing was spent: too little history)."""
    if state is None:
        return
    tier = GaugeMetricFamily("selfpub_sustain_tier", "1 for the sustain tier in force", labels=["tier"])
    for name in TIERS:
        tier.add_metric([name], 1 if name == state.tier else 0)
    yield tier
    window = f"over the sustain window ({state.window_hours} h)"
    yield GaugeMetricFamily("selfpub_sustain_income_credits", f"Income {window}", value=state.income / UCR_PER_CREDIT)
    yield GaugeMetricFamily("selfpub_sustain_cost_credits", f"Compute cost {window}", value=state.cost / UCR_PER_CREDIT)
    if state.ratio is not None:
        yield GaugeMetricFamily("selfpub_sustain_ratio", f"Income / compute cost {window}", value=state.ratio / 1000)


def metrics_text(figures: _Figures) -> bytes:
    """The prometheus text exposition of one set of figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(figures))  # type: ignore[arg-type]
    return generate_latest(registry)


# -- the status page ----------------------------------------------------------------

CHART_W, CHART_H, PAD = 720, 260, 44
COLOURS = {"balance": "#2563eb", "spend": "#dc2626", "income": "#16a34a"}
# Each event kind's colour, as ledger/plot.py's EVENT_STYLE (matplotlib's tab: palette).
EVENT_COLOURS = {"deposit": "#9467bd", "tip": "#2ca02c", "pause": "#ff7f0e", "resume": "#17becf"}


def chart_svg(points: list[Point], events: list[Event] | None = None) -> str:
    """An inline SVG step chart of balance, cumulative spend and income, its events marked (credits over time)."""
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
    stacked: dict[datetime, int] = {}  # labels already at this time: the next one goes above them
    for ev in events or ():  # the same events `selfpub ledger plot` marks, at the balance they left
        at = Point(ev.at, 0, 0, 0)
        above = stacked[ev.at] = stacked.get(ev.at, -1) + 1
        balance = next((p.balance for p in reversed(points) if p.at <= ev.at), points[0].balance)
        colour = EVENT_COLOURS.get(ev.kind, "#111827")
        out.append(f'<line class="event ev-{html.escape(ev.kind)}" x1="{x(at):.1f}" y1="{PAD - 10}" x2="{x(at):.1f}" '
                   f'y2="{CHART_H - PAD}" stroke="{colour}" stroke-dasharray="3,3"/>')
        out.append(f'<circle cx="{x(at):.1f}" cy="{y(balance):.1f}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{x(at) + 4:.1f}" y="{y(balance) - 8 - 12 * above:.1f}" font-size="10" fill="{colour}">'
                   f"{html.escape(event_label(ev))}</text>")
    out.append("</svg>")
    return "".join(out)


PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 12px} h2{font-size:16px;margin:24px 0 8px}
.state{display:inline-block;padding:4px 10px;border-radius:6px;color:#fff;font-weight:600}
.RUNNING{background:#15803d}.PAUSED{background:#b45309}.DEGRADED{background:#b91c1c}.STOPPING,.STARTING{background:#4b5563}
.cards{display:flex;gap:16px;margin:12px 0}.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #e5e7eb;padding:4px 10px;text-align:left;font-size:13px}
th{background:#eef2ff}.err{color:#b91c1c}
form{display:inline-block;margin:2px 4px 2px 0}button{font-size:13px;padding:3px 10px;border-radius:5px;
border:1px solid #374151;background:#fff;color:#111827;cursor:pointer}button.approve{background:#15803d;color:#fff}
button.reject{background:#b91c1c;color:#fff}td ul{margin:0;padding-left:16px}.note{background:#fff;
border-left:4px solid #2563eb;padding:6px 10px}.notice{border-left-color:#15803d}code{background:#eef2ff;padding:0 3px}
caption{text-align:left;font-weight:600;padding:4px 0}#funding p{margin:4px 0}.cards{flex-wrap:wrap}
"""


# Reloads the page (a GET of /) every data-refresh seconds, unless the operator unticked "reload" or is typing
# in a field (a token, a reason); allowed by its hash in the CSP, the page's only script. Not a meta refresh:
# one the operator cannot stop fails WCAG 2.2.1 (axe-core's meta-refresh rule).
REFRESH_JS = (
    "(function(){var every=Number(document.body.getAttribute('data-refresh'))||0;"
    "var box=document.getElementById('autorefresh');if(!every||!box)return;"
    "box.checked=sessionStorage.getItem('selfpub-refresh')!=='off';"
    "box.addEventListener('change',function(){sessionStorage.setItem('selfpub-refresh',box.checked?'on':'off');});"
    "function tick(){var typing=Array.prototype.some.call(document.querySelectorAll('input[type=text],"
    "input[type=password]'),function(i){return i.value||i===document.activeElement;});"
    "if(box.checked&&!typing){location.assign('/');}else{setTimeout(tick,every*1000);}}"
    "setTimeout(tick,every*1000);})();"
)
SCRIPT_SRC = "'sha256-" + base64.b64encode(hashlib.sha256(REFRESH_JS.encode()).digest()).decode() + "'"


@dataclass(frozen=True)
class Access:
    """What this page may offer: writes configured, this browser unlocked, the page's CSRF token."""

    writable: bool = False
    unlocked: bool = False
    csrf: str = ""


def status_page(service: Service, data: ConsoleData, access: Access = Access(), *,
                next_cycle: datetime | None = None, notice: str = "") -> str:
    """The console: state, balance, runway, held drafts, chart and its events, funding, spend, posts, failures."""
    e = html.escape
    f = service.figures
    snap = f.snapshot
    state, why = service.display_state()
    reason = f' <span>{e(why)}</span>' if why else ""
    runway = f"{f.runway_days:.1f} days" if f.runway_days is not None else "n/a (no recent spend)"
    tier = f.sustain
    ratio = "n/a" if tier is None or tier.ratio is None else format_ratio(tier.ratio)
    last = (f"{f.last_cycle_at:%Y-%m-%d %H:%M} UTC ({e(str(f.last_cycle_outcome))})" if f.last_cycle_at else "never")
    per = data.per_article
    cards = [("available", format_credits(snap.available) + " cr" if snap else "?"),
             ("wallet", format_credits(snap.wallet) + " cr" if snap else "?"),
             ("owed to providers", format_credits(snap.liabilities) + " cr" if snap else "?"),
             ("runway", runway), ("sustain", f"{tier.tier} ({ratio})" if tier else "?"), ("last cycle", last),
             ("cycles without progress", str(service.book.no_progress)),
             ("interrupted job runs", str(service.interrupted)),
             (f"cost per article ({console.CHART_DAYS} d, mean / p90)",
              f"{format_credits(per.cost_mean)} / {format_credits(per.cost_p90)} cr" if per.articles else "n/a (none published)"),
             (f"income per article ({console.CHART_DAYS} d)", f"{format_credits(per.income_mean)} cr" if per.articles else "n/a"),
             ("next cycle", f"{next_cycle.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if next_cycle else
              ("paused" if service.state.value == "PAUSED" else "not scheduled"))]
    note = f'<p class="err">{e(service.reload_note)}</p>' if service.reload_note else ""
    if notice:
        note += f'<p class="note notice" role="status">{e(notice)}</p>'
    every = service.settings.http.auto_refresh_seconds
    refresh = (f'<p class="refresh"><input type="checkbox" id="autorefresh" checked> <label for="autorefresh">'
               f"reload this page every {every} s</label></p>") if every else ""  # a GET: never sends a form again
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>selfpub · {e(service.settings.persona)}</title><style>{PAGE_CSS}</style></head>"
        f'<body data-refresh="{every}"><main>'
        f"<h1>selfpub · {e(service.settings.persona)}</h1>" + refresh +
        f'<div><span class="state {e(state)}">{e(state)}</span>{reason}</div>{note}'
        '<div class="cards">' + "".join(f'<div class="card">{e(k)}<b>{e(v)}</b></div>' for k, v in cards) + "</div>"
        + (f'<p class="sustain">sustain {e(tier.reason)}</p>' if tier else "") +
        "<h2>Held drafts</h2>" + console.write_access(access.writable, access.unlocked, access.csrf)
        + console.held_table(data.held, access.csrf, access.writable and access.unlocked) +
        f"<h2>Balance, spend and income (credits, last {console.CHART_DAYS} days)</h2>"
        + chart_svg(data.points, data.events) + console.events_list(data.events) +
        "<h2>Funding and pause thresholds</h2>" + console.funding(service) +
        "<h2>Compute spend</h2>" + console.spend_tables(data.spend_by_agent, data.spend_by_model) +
        "<h2>Recent posts</h2>" + console.posts_table(data.posts) +
        "<h2>Recent failures</h2>" + console.failures_table(data.errors, data.turned_down) +
        f"</main><script>{REFRESH_JS}</script></body></html>"
    )


# -- the server ---------------------------------------------------------------------


class StatusServer:
    """Serves /healthz, /metrics and the console (/, and its writes) for one Service."""

    def __init__(self, service: Service, bind: str = "127.0.0.1", port: int = 8787):
        self.service = service
        self.bind = bind
        self.port = port
        self._server: asyncio.AbstractServer | None = None
        self._guard, self._guard_of = Guard(None), b""

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

    def guard(self) -> Guard:
        """The Guard of the console token in force (a reload that changes the token signs out every browser)."""
        secret = self.service.settings.http.console_token_value
        value = secret.get_secret_value() if secret is not None else None
        digest = hashlib.sha256(value.encode()).digest() if value else b""
        if digest != self._guard_of:
            self._guard, self._guard_of = Guard(value), digest
        return self._guard

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        try:
            line, *fields = head.decode("latin-1").split("\r\n")
            method, target, _version = line.split(" ", 2)
            headers = {}
            for field_line in filter(None, fields):
                name, colon, value = field_line.partition(":")
                if not colon:
                    raise ValueError(field_line)
                headers[name.strip().lower()] = value.strip()
        except ValueError:
            await self._send(writer, 400, b"bad request\n", TEXT)
            return
        url = urlsplit(target)
        path = url.path
        try:
            if method == "GET":
                status, body, ctype, extra = await self._route(path, url.query, headers)
            elif method == "POST" and path in WRITES:
                status, body, ctype, extra = await self._post(path, headers, reader)
            else:
                status, body, ctype, extra = 405, b"method not allowed\n", TEXT, {
                    "Allow": "GET, POST" if path in WRITES else "GET"}
        except Exception:
            log.exception("status server error", extra={"path": path})
            status, body, ctype, extra = 500, b"internal error\n", TEXT, {}
        await self._send(writer, status, body, ctype, extra, length=len(body))

    async def _route(self, path: str, query: str, headers: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        s = self.service
        if path == "/healthz":
            h = await s.fresh_health()
            return (200 if h.ok else 503), (h.reason + "\n").encode(), TEXT, {}
        if path == "/metrics":
            await s.refresh()
            figures = await in_thread(_Figures, s)
            return 200, metrics_text(figures), CONTENT_TYPE_LATEST, {}
        if path in ("/", "/index.html"):
            await s.refresh()
            data = await in_thread(console.gather, s)
            s.interrupted = data.interrupted
            guard = self.guard()
            unlocked = guard.has_session(cookie_of(headers.get("cookie", ""), cookie_name(self.address[1])))
            access = Access(guard.writable, unlocked, guard.issue())
            done = parse_qs(query).get("done", [""])[0]
            page = status_page(s, data, access, next_cycle=console.next_cycle(s), notice=NOTICES.get(done, ""))
            return 200, page.encode(), HTML, {}
        return 404, b"not found\n", TEXT, {}

    async def _post(self, path: str, headers: dict[str, str],
                    reader: asyncio.StreamReader) -> tuple[int, bytes, str, dict[str, str]]:
        """One console write: the form read and checked, then unlock, approve or reject; 303 back to the page."""
        length = headers.get("content-length", "")
        if not length.isdigit():
            return 411, b"a form needs a Content-Length\n", TEXT, {}
        if int(length) > MAX_FORM_BYTES:
            return 413, b"form too large\n", TEXT, {}
        if headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
            return 415, f"send the form as {FORM}\n".encode(), TEXT, {}
        try:
            raw = await asyncio.wait_for(reader.readexactly(int(length)), READ_TIMEOUT_SECONDS)
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True,
                                                  max_num_fields=8).items()}
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, UnicodeDecodeError, ValueError):
            return 400, b"bad form\n", TEXT, {}
        refused = self._refused(path, headers, form)
        if refused:
            log.warning("console write refused", extra={"path": path, "why": refused})  # never the token
            return 403, f"forbidden: {refused}\n".encode(), TEXT, {}
        guard = self.guard()
        if path == "/unlock":
            if guard.unlock_refused():
                log.warning("console write refused", extra={"path": path, "why": "too many wrong console tokens"})
                return 429, b"too many wrong console tokens: try again in a minute\n", TEXT, {"Retry-After": "60"}
            cookie = guard.session(form.get("token", ""))
            if cookie is None:
                log.warning("console write refused", extra={"path": path, "why": "wrong console token"})
                return 403, b"forbidden: wrong console token\n", TEXT, {}
            log.info("console unlocked")
            return 303, b"", TEXT, {"Location": "/?done=unlocked", "Set-Cookie": (
                f"{cookie_name(self.address[1])}={cookie}; Path=/; HttpOnly; SameSite=Strict; "
                f"Max-Age={SESSION_MAX_AGE_SECONDS}")}
        task_id = form.get("task", "")
        try:
            if path == "/drafts/approve":
                task = await in_thread(console.approve, self.service, task_id)
                done = "approved"
            else:
                task = await in_thread(console.reject, self.service, task_id, form.get("reason", "")[:300])
                done = "rejected"
        except TaskError as exc:
            return 409, (f"{exc}\nreload the console: http://{self.address[0]}:{self.address[1]}/\n").encode(), TEXT, {}
        log.info(f"console: draft {done}", extra={"task_id": task.id})
        return 303, b"", TEXT, {"Location": f"/?done={done}"}

    def _refused(self, path: str, headers: dict[str, str], form: dict[str, str]) -> str | None:
        """Why this write may not go ahead (None when it may); the checks of daemon/csrf.py."""
        guard = self.guard()
        if not guard.writable:
            return "the console is read-only (set http.console_token_file to enable writes)"
        host, port = self.address
        why = same_origin(headers, own_hosts(host, port))
        if why:
            return why
        if not guard.spend_csrf(form.get("csrf", "")):
            return "the form is stale or was sent already: reload the page"
        if path != "/unlock" and not guard.has_session(cookie_of(headers.get("cookie", ""), cookie_name(port))):
            return "writes are locked: unlock them with the console token"
        return None

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str,
                    headers: dict[str, str] | None = None, length: int | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, '')}", f"Content-Type: {ctype}",
                 f"Content-Length: {len(body) if length is None else length}", "Connection: close",
                 "Cache-Control: no-store", "X-Content-Type-Options: nosniff", "X-Frame-Options: DENY",
                 "Referrer-Policy: same-origin",
                 "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 f"script-src {SCRIPT_SRC}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
