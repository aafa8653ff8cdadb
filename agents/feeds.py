"""Fetch RSS/Atom feeds politely and read what can be read from them.

A fetch is a conditional GET (ETag / Last-Modified from the research store),
streamed and cut at `research.max_feed_bytes`, with a deadline of
`research.fetch_timeout_seconds`, at most `research.max_redirects` hops, only
http/https, and at most `research.concurrency` requests in flight. Bodies are
parsed by feedparser from bytes (never from a string it could take for a path
or URL). Ill-formed ("bozo") feeds yield the items that could be read.

Nothing here raises out of `fetch`/`fetch_all`: each feed ends in a
`FeedReport` whose `status` classifies the outcome by exception type or
status code, so one bad feed never crashes a cycle:

    FetchError                       (internal, becomes a FeedReport.status; retryable None)
      +-- BadURL                     "bad_url"             not an absolute http(s) URL
      +-- TooManyRedirects           "too_many_redirects"  more hops than max_redirects
      +-- HTTPStatus                 "http_error"          4xx/5xx (report.http_status)
    httpx.TimeoutException, TimeoutError  "timeout"        connect/read/overall deadline
    httpx.TransportError             "fetch_error"         refused, reset, protocol error
    parser failure                   "parse_error"         feedparser itself failed
    a 429/503 Retry-After not over   "deferred"            not fetched until the time the host asked for
    success                          "ok" | "not_modified" (304) | "truncated" (size cap hit)
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
from opentelemetry import trace

from agents.dedupe import canonical_url, content_hash
from agents.messages import FeedItem
from agents.research_store import ResearchStore, Validators
from config.settings import FeedSettings, ResearchSettings
from kernel.http import retry_after_seconds

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.agents")

USER_AGENT = "selfpub/0.1 (+https://github.com/selfpub; feed reader)"
ACCEPT = "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
MAX_TITLE_CHARS = 300
MAX_SUMMARY_CHARS = 4_000
MAX_CONTENT_CHARS = 20_000
MAX_ITEMS_PER_FEED = 1_000  # newest-first feeds: the rest is old news
MAX_TAGS = 6
RAW_TEXT_FACTOR = 20  # HTML is cut at this multiple of the text cap before stripping
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
OK_STATUSES = frozenset({"ok", "not_modified", "truncated"})


class FetchError(Exception):
    """A fetch that could not produce a body; carries the URL."""

    status = "fetch_error"
    retryable: bool | None = None  # never leaves fetch(): a FeedReport says what happened

    def __init__(self, url: str, detail: str = "", http_status: int | None = None) -> None:
        super().__init__(f"{detail or self.status}: {url}")
        self.url = url
        self.http_status = http_status


class BadURL(FetchError):
    status = "bad_url"


class TooManyRedirects(FetchError):
    status = "too_many_redirects"


class _Deferred(FetchError):
    status = "deferred"


class HTTPStatus(FetchError):
    status = "http_error"
    retry_after: float | None = None  # seconds a 429/503 asked us to wait


@dataclass(frozen=True)
class Fetched:
    """One finished GET: final URL, status, headers, the body read (maybe cut at the cap)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool


@dataclass
class FeedReport:
    """How one feed went this cycle."""

    feed_url: str
    status: str
    http_status: int | None = None
    items_found: int = 0
    items_new: int = 0
    bozo: str | None = None  # why the feed was ill-formed, when it was
    error: str | None = None
    bytes_read: int = 0
    elapsed_ms: int = 0

    @property
    def ok(self) -> bool:
        """True when the feed was read (fully, partly, or unchanged)."""
        return self.status in OK_STATUSES


@dataclass
class FeedResult:
    """A feed's report and the items read from it."""

    report: FeedReport
    items: list[FeedItem] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedFeed:
    """What feedparser could read from one body."""

    items: list[FeedItem]
    entries_found: int
    bozo: str | None
    dropped: int  # entries without a usable http(s) link or any text
    encoding: str | None = None  # the character encoding feedparser settled on


# -- HTML to text ----------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head", "title"})
    BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "pre", "section", "article"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def html_to_text(html: str, limit: int) -> str:
    """Readable text of an HTML fragment: no tags, no scripts or styles, single spaces, at most `limit` chars."""
    if not html:
        return ""
    html = html[: limit * RAW_TEXT_FACTOR]
    if "<" in html or "&" in html:
        parser = _TextExtractor()
        try:
            parser.feed(html)
            parser.close()
            text = "".join(parser.parts)
        except (AssertionError, ValueError):  # html.parser gives up on some malformed markup
            text = re.sub(r"<[^>]*>", " ", html)
    else:
        text = html
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text[:limit].rstrip()


# -- parsing ---------------------------------------------------------------------------


def _published(entry: Mapping) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        t = entry.get(key)
        if not t:
            continue
        try:
            dt = datetime(*t[:6], tzinfo=timezone.utc)
        except (TypeError, ValueError, OverflowError):
            continue
        if 1990 <= dt.year <= datetime.now(timezone.utc).year + 1:
            return dt
    return None


def _link(entry: Mapping, base: str) -> str | None:
    candidates = [entry.get("link")]
    candidates += [lk.get("href") for lk in entry.get("links", ()) if isinstance(lk, Mapping) and lk.get("rel", "alternate") == "alternate"]
    candidates.append(entry.get("id") if isinstance(entry.get("id"), str) and entry.get("id", "").startswith("http") else None)
    for raw in candidates:
        if isinstance(raw, str) and raw.strip():
            url = canonical_url(urljoin(base, raw.strip()) if base else raw.strip())
            if url:
                return url
    return None


def _tags(entry: Mapping, configured: Sequence[str]) -> tuple[str, ...]:
    tags: list[str] = list(configured)
    for t in entry.get("tags", ()) or ():
        term = t.get("term") if isinstance(t, Mapping) else None
        clean = re.sub(r"[^a-z0-9]", "", (term or "").lower())[:30]
        if clean and clean not in tags:
            tags.append(clean)
    return tuple(tags[:MAX_TAGS])


def _summary_and_content(entry: Mapping) -> tuple[str, str]:
    raw_summary = entry.get("summary") or ""
    raw_content = ""
    for c in entry.get("content", ()) or ():
        if isinstance(c, Mapping) and c.get("value"):
            raw_content = c["value"]
            break
    summary = html_to_text(raw_summary or raw_content, MAX_SUMMARY_CHARS)
    content = html_to_text(raw_content, MAX_CONTENT_CHARS) if raw_content else ""
    return summary, content


def parse_feed(
    body: bytes,
    *,
    feed_url: str,
    headers: Mapping[str, str] | None = None,
    feed_name: str | None = None,
    tags: Sequence[str] = (),
    max_items: int = MAX_ITEMS_PER_FEED,
) -> ParsedFeed:
    """Items feedparser can read from a body; ill-formed input yields what is readable plus the bozo reason."""
    response_headers = {k.lower(): v for k, v in (headers or {}).items()}
    base = response_headers.get("content-location") or feed_url
    # Without a Content-Type there is nothing HTTP can tell feedparser: let it sniff the XML alone.
    http = response_headers if "content-type" in response_headers else None
    # A file object: given bytes or str, feedparser may treat them as a path or URL and open it.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=http, sanitize_html=True)
    bozo = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        bozo = f"{type(exc).__name__}: {str(exc)[:300]}" if exc is not None else "ill-formed feed"
    name = feed_name or html_to_text(parsed.get("feed", {}).get("title", ""), 200) or None
    items: list[FeedItem] = []
    dropped = 0
    entries = parsed.get("entries", []) or []
    for entry in entries[:max_items]:
        link = _link(entry, base)
        title = html_to_text(entry.get("title", ""), MAX_TITLE_CHARS)
        summary, content = _summary_and_content(entry)
        if link is None or not (title or summary):
            dropped += 1
            continue
        items.append(
            FeedItem(
                feed_url=feed_url,
                feed_name=name,
                url=link,
                title=title or summary[:MAX_TITLE_CHARS],
                summary=summary,
                content=content,
                published=_published(entry),
                content_hash=content_hash(title, summary),
                tags=_tags(entry, tags),
            )
        )
    return ParsedFeed(items=items, entries_found=len(entries), bozo=bozo, dropped=dropped, encoding=parsed.get("encoding"))


# -- fetching --------------------------------------------------------------------------


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadURL(url, "only absolute http(s) URLs are fetched")


async def fetch_body(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    max_redirects: int,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET one URL: redirects followed by hand (counted, http(s) only), body streamed and cut at max_bytes."""
    hops = 0
    while True:
        _check_url(url)
        async with client.stream(
            "GET", url, headers=dict(headers or {}), follow_redirects=False, timeout=httpx.Timeout(timeout)
        ) as resp:
            location = resp.headers.get("location")
            if resp.status_code in REDIRECT_CODES and location:
                hops += 1
                if hops > max_redirects:
                    raise TooManyRedirects(url, f"more than {max_redirects} redirects", resp.status_code)
                url = urljoin(url, location)
                continue
            if resp.status_code >= 400:
                error = HTTPStatus(url, f"HTTP {resp.status_code}", resp.status_code)
                if resp.status_code in (429, 503):
                    error.retry_after = retry_after_seconds(resp.headers.get("retry-after"))
                raise error
            chunks: list[bytes] = []
            size, truncated = 0, False
            if resp.status_code != 304:
                async for chunk in resp.aiter_bytes():
                    if size + len(chunk) > max_bytes:
                        chunks.append(chunk[: max_bytes - size])
                        size, truncated = max_bytes, True
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            return Fetched(url, resp.status_code, dict(resp.headers), b"".join(chunks), truncated)


class FeedFetcher:
    """Fetches configured feeds with the client it is given, remembering validators in the store."""

    def __init__(self, client: httpx.AsyncClient, settings: ResearchSettings, store: ResearchStore | None = None) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._not_before: dict[str, float] = {}  # feed URL -> monotonic time its host's Retry-After ends

    async def _get(self, url: str, headers: Mapping[str, str], max_bytes: int) -> Fetched:
        s = self.settings
        async with self._sem:
            # One deadline for the whole exchange: a server dribbling bytes defeats per-read timeouts.
            async with asyncio.timeout(s.fetch_timeout_seconds):
                return await fetch_body(
                    self.client,
                    url,
                    max_bytes=max_bytes,
                    max_redirects=s.max_redirects,
                    timeout=s.fetch_timeout_seconds,
                    headers={"User-Agent": USER_AGENT, **headers},
                )

    async def fetch(self, feed: FeedSettings) -> FeedResult:
        """Fetch and parse one feed; never raises for anything the network or the feed can do."""
        started = time.monotonic()
        report = FeedReport(feed_url=feed.url, status="ok")
        items: list[FeedItem] = []
        with tracer.start_as_current_span("research.fetch_feed", attributes={"feed.url": feed.url}) as span:
            validators = self.store.validators(feed.url) if self.store else Validators()
            headers = {"Accept": ACCEPT}
            if validators.etag:
                headers["If-None-Match"] = validators.etag
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
            new_validators: Validators | None = None
            wait = self._not_before.get(feed.url, 0.0) - time.monotonic()
            try:
                if wait > 0:
                    raise _Deferred(feed.url, f"the host asked to wait (Retry-After): {wait:.1f}s left")
                got = await self._get(feed.url, headers, self.settings.max_feed_bytes)
                report.http_status, report.bytes_read = got.status, len(got.body)
                if got.status == 304:
                    report.status = "not_modified"
                else:
                    new_validators = Validators(got.headers.get("etag"), got.headers.get("last-modified"))
                    parsed = await asyncio.to_thread(
                        parse_feed, got.body, feed_url=feed.url, headers={**got.headers, "content-location": got.url},
                        feed_name=feed.name, tags=feed.tags,
                    )
                    items = parsed.items
                    report.items_found, report.bozo = len(items), parsed.bozo
                    if got.truncated:
                        report.status = "truncated"
                        report.error = f"body cut at {self.settings.max_feed_bytes} bytes"
            except FetchError as e:
                report.status, report.http_status, report.error = e.status, e.http_status, str(e)
                if getattr(e, "retry_after", None) is not None:
                    self._not_before[feed.url] = time.monotonic() + e.retry_after
            except (httpx.TimeoutException, TimeoutError):
                report.status, report.error = "timeout", f"no complete answer within {self.settings.fetch_timeout_seconds}s"
            except httpx.HTTPError as e:  # transport-level: refused, reset, invalid response, too many headers
                report.status, report.error = "fetch_error", f"{type(e).__name__}: {str(e)[:300]}"
            except Exception as e:  # noqa: BLE001 -- a parser bug on hostile input must not end the cycle
                report.status, report.error = "parse_error", f"{type(e).__name__}: {str(e)[:300]}"
                log.exception("feed parse failed", extra={"feed_url": feed.url})
            report.elapsed_ms = int((time.monotonic() - started) * 1000)
            if self.store and report.status != _Deferred.status:
                self.store.save_feed_state(
                    feed.url, status=report.http_status, outcome=report.status, error=report.error, validators=new_validators
                )
            span.set_attribute("feed.status", report.status)
            span.set_attribute("feed.items", report.items_found)
            log.log(
                logging.INFO if report.status in OK_STATUSES else logging.WARNING,
                "feed fetched",
                extra={
                    "feed_url": feed.url, "status": report.status, "http_status": report.http_status,
                    "items": report.items_found, "bozo": report.bozo, "bytes": report.bytes_read, "ms": report.elapsed_ms,
                    "error": report.error,
                },
            )
        return FeedResult(report, items)

    async def fetch_all(self, feeds: Sequence[FeedSettings]) -> list[FeedResult]:
        """Fetch every feed, at most research.concurrency at a time, results in the order given."""
        return list(await asyncio.gather(*(self.fetch(f) for f in feeds)))

    async def fetch_article(self, url: str) -> str:
        """Main text of an article page (trafilatura), capped; '' when it cannot be fetched or read."""
        with tracer.start_as_current_span("research.fetch_article", attributes={"article.url": url}):
            try:
                got = await self._get(url, {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}, self.settings.max_article_bytes)
            except (FetchError, httpx.HTTPError, TimeoutError) as e:
                log.info("article not fetched", extra={"url": url, "error": type(e).__name__})
                return ""
            if got.status != 200 or not got.body:
                return ""
            return await asyncio.to_thread(extract_main_text, got.body)


def extract_main_text(html: bytes, limit: int = MAX_CONTENT_CHARS) -> str:
    """Main text of an HTML page by trafilatura (no comments, no tables), capped at `limit` chars."""
    import trafilatura

    try:
        text = trafilatura.extract(html, include_comments=False, include_tables=False, include_links=False, favor_precision=True)
    except Exception:  # noqa: BLE001 -- lxml/trafilatura failures on hostile pages are not our bug
        return ""
    return " ".join((text or "").split())[:limit]
