"""Stand-ins for the other peers of a cycle, as real HTTP servers on 127.0.0.1.

    FeedServer(items)      an RSS 2.0 feed of the benchmark's items (GET /feed.xml) and, for items
                           with a `content`, the article page at the item's URL path (GET /a/<slug>.html);
                           `on_site(items, base)` points the items' URLs at that site
    DevtoServer()          a Dev.to-like Forem API: POST /api/articles -> 201 {id, url, ...},
                           GET /api/articles/me[/all] paged; an api-key header is required

Both can sleep a fixed latency per request, and record when each request was
being served (time.perf_counter(), the same clock as the client in-process).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

ARTICLE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<header><nav><a href="/">News</a> | <a href="/about">About</a></nav></header>
<main><article><h1>{title}</h1><p class="byline">Published {published}</p>
{paragraphs}
</article></main><footer><p>Copyright the bench site. All rights reserved.</p></footer></body></html>"""


def on_site(items: Sequence[dict], base: str) -> list[dict]:
    """The items with their URLs on the local site (base + /a/<slug>.html), so their articles can be fetched."""
    out = []
    for it in items:
        slug = urlsplit(it["url"]).path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "item"
        out.append(it | {"url": f"{base}/a/{slug}.html"})
    return out


def article_page(item: dict) -> bytes:
    """The HTML page of an item's article: its sections as headings and paragraphs, with site chrome around."""
    parts = []
    for block in item.get("content", "").split("\n\n"):
        if block.startswith("## "):
            heading, _, text = block.partition("\n")
            parts.append(f"<h2>{escape(heading[3:])}</h2>")
            block = text
        if block.strip():
            parts.append(f"<p>{escape(block.strip())}</p>")
    return ARTICLE_PAGE.format(title=escape(item["title"]), published=escape(item.get("published", "")),
                               paragraphs="\n".join(parts)).encode()


@dataclass
class _Peer:
    latency: float = 0.0
    intervals: list[tuple[float, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:  # noqa: ANN401
        raise NotImplementedError

    @contextmanager
    def serve(self, host: str = "127.0.0.1") -> Iterator[str]:
        """Serve on a free port; yields the base URL (no trailing slash)."""
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                t0 = time.perf_counter()
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                if peer.latency:
                    time.sleep(peer.latency)
                status, ctype, payload = peer.answer(self.command, self.path, self.headers, raw)
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                with peer._lock:
                    peer.intervals.append((t0, time.perf_counter()))

            do_GET = _handle
            do_POST = _handle

        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name=type(self).__name__, daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@dataclass
class FeedServer(_Peer):
    """An RSS feed of items ({title, url, summary, tags, published}); `items` may be replaced between cycles."""

    items: Sequence[dict] = ()

    def rss(self) -> bytes:
        """The feed document."""
        entries = []
        for it in self.items:
            cats = "".join(f"<category>{escape(t)}</category>" for t in it.get("tags", ()))
            published = format_datetime(datetime.fromisoformat(it["published"])) if it.get("published") else ""
            entries.append(
                f"<item><title>{escape(it['title'])}</title><link>{escape(it['url'])}</link>"
                f"<guid>{escape(it['url'])}</guid><pubDate>{published}</pubDate>{cats}"
                f"<description>{escape(it['summary'])}</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench feed</title>'
            "<link>https://news.example.org/</link><description>benchmark items</description>"
            + "".join(entries) + "</channel></rss>"
        ).encode()

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:  # noqa: ANN401
        if method == "GET" and path.split("?", 1)[0] == "/feed.xml":
            return 200, "application/rss+xml", self.rss()
        for it in self.items if method == "GET" else ():
            if it.get("content") and urlsplit(it["url"]).path == path.split("?", 1)[0]:
                return 200, "text/html; charset=utf-8", article_page(it)
        return 404, "text/plain", b"not found"


@dataclass
class DevtoServer(_Peer):
    """A Dev.to-like article API (the part selfpub uses), answering like Forem."""

    api_key: str = "bench-devto-key"
    articles: list[dict] = field(default_factory=list)

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, str, bytes]:  # noqa: ANN401
        if headers.get("api-key") != self.api_key:
            return 401, "application/json", b'{"error": "unauthorized", "status": 401}'
        url = urlsplit(path)
        if method == "POST" and url.path == "/api/articles":
            try:
                article = json.loads(body)["article"]
            except (ValueError, KeyError, TypeError):
                return 422, "application/json", b'{"error": "article is missing", "status": 422}'
            if not article.get("title") or not article.get("body_markdown"):
                return 422, "application/json", b'{"error": "Title can\'t be blank", "status": 422}'
            with self._lock:
                n = len(self.articles) + 1
                slug = f"bench-article-{n}"
                stored = {
                    "type_of": "article", "id": n, "title": article["title"], "slug": slug, "path": f"/bench/{slug}",
                    "url": f"https://dev.to/bench/{slug}", "published": bool(article.get("published")),
                    "body_markdown": article["body_markdown"], "canonical_url": article.get("canonical_url"),
                    "tag_list": article.get("tags", ""), "page_views_count": 0, "public_reactions_count": 0,
                    "comments_count": 0,
                }
                self.articles.append(stored)
            return 201, "application/json", json.dumps(stored).encode()
        if method == "GET" and url.path in ("/api/articles/me", "/api/articles/me/all"):
            q = parse_qs(url.query)
            page, per = int(q.get("page", ["1"])[0]), int(q.get("per_page", ["30"])[0])
            rows = self.articles[(page - 1) * per: page * per]
            return 200, "application/json", json.dumps(rows).encode()
        return 404, "application/json", b'{"error": "not found", "status": 404}'


def union_seconds(intervals: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Seconds within [start, end] covered by at least one interval."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in clipped:
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a
    return total
