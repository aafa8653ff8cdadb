"""Dev.to (Forem API v1) adapter over an injected httpx.AsyncClient.

Errors (classified by status code / exception type):
    PublishError
     +-- RetryableError   httpx.TimeoutException, httpx.TransportError, 429 (Retry-After), 5xx,
     |                    an unreadable (malformed) answer, local rate limit
     +-- PermanentError   400, 401, 403, 404, 422 and any other 4xx

Every article carries a hidden marker comment `<!-- selfpub:KEY -->` at the end
of its Markdown (KEY percent-encoded beyond [A-Za-z0-9:._/-], so distinct keys
never share a marker and `-->` cannot end the comment early). `find_existing`
recognises an article in /api/articles/me/all by that marker only: a title or
canonical_url is not ours to match on (an older article with the same title
would be taken for the new post, which then never appears).

Published.extra["published"] is always "true" or "false": a draft's URL is a
404 for readers, and the dispatcher must know not to link to it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry import trace
from pydantic import SecretStr

from config.settings import DevtoSettings
from kernel.http import retry_after_seconds
from publishers.protocol import Metrics, PermanentError, Post, Published, RetryableError
from publishers.ratelimit import Limiter, devto_limiters

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.publishers")

PLATFORM = "devto"
MAX_TAGS = 4
PER_PAGE = 100
MAX_PAGES = 50  # /me/all is scanned at most this deep (5,000 articles)
MARKER_SAFE = ":./-_"  # with letters and digits: kept as they are (the markers of keys made of these never changed)


def marker(key: str) -> str:
    """The hidden comment that identifies an article made for idempotency key `key` (one key, one marker)."""
    return f"<!-- selfpub:{quote(key, safe=MARKER_SAFE)} -->"


def clean_tags(tags: Sequence[str]) -> list[str]:
    """At most 4 tags, lowercase alphanumeric, unique, in order."""
    out: list[str] = []
    for tag in tags:
        t = re.sub(r"[^a-z0-9]", "", tag.lower())
        if t and t not in out:
            out.append(t)
    return out[:MAX_TAGS]


class DevtoPublisher:
    """Creates Dev.to articles (drafts unless settings say publish) and reads their counters."""

    name = PLATFORM

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: DevtoSettings,
        api_key: SecretStr,
        *,
        writes: Limiter | None = None,
        articles: Limiter | None = None,
    ):
        self._client = client
        self._settings = settings
        self._api_key = api_key
        self._base = settings.base_url.rstrip("/")
        default_writes, default_articles = devto_limiters(new_account=settings.new_account)
        self._writes = writes or default_writes
        self._articles = articles or default_articles
        self._not_before = 0.0  # time.monotonic() before which no read is sent (the last 429's Retry-After)

    # -- HTTP ----------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, limiter: Limiter | None = None, **kwargs: Any) -> httpx.Response:
        if limiter is not None:
            await limiter.acquire()  # writes wait out a Retry-After here (block_for below)
        else:
            # Reads honour it too: a read sent anyway would meet another 429 and push the writes' block on.
            left = self._not_before - time.monotonic()
            if left > 0:
                raise RetryableError(PLATFORM, f"{method} {path} held off by Retry-After (429)", status=429,
                                     retry_after=left)
        headers = {"api-key": self._api_key.get_secret_value(), "accept": "application/vnd.forem.api-v1+json"}
        with tracer.start_as_current_span(f"devto {method} {path}", attributes={"http.method": method}):
            try:
                resp = await self._client.request(method, self._base + path, headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                raise RetryableError(PLATFORM, f"timeout on {method} {path}") from exc
            except httpx.TransportError as exc:
                raise RetryableError(PLATFORM, f"{type(exc).__name__} on {method} {path}") from exc
        if resp.status_code < 400:
            return resp
        message = _error_message(resp)
        if resp.status_code == 429:
            retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            if retry_after is not None:
                self._writes.block_for(retry_after)
                self._not_before = max(self._not_before, time.monotonic() + retry_after)
            raise RetryableError(PLATFORM, message, status=429, retry_after=retry_after)
        if resp.status_code >= 500:
            raise RetryableError(PLATFORM, message, status=resp.status_code)
        raise PermanentError(PLATFORM, message, status=resp.status_code)

    # -- Publisher -----------------------------------------------------------------

    def article_body(self, post: Post) -> dict[str, Any]:
        """The JSON body of POST /api/articles for `post`."""
        article: dict[str, Any] = {
            "title": post.title,
            "body_markdown": f"{post.body_markdown.rstrip()}\n\n{marker(post.key)}\n",
            "published": self._settings.publish,
            "tags": ", ".join(clean_tags(post.tags)),
            "ai_disclosure_level": self._settings.ai_disclosure_level,
        }
        if post.description:
            article["description"] = post.description
        if post.canonical_url:
            article["canonical_url"] = post.canonical_url
        if self._settings.series:
            article["series"] = self._settings.series
        return {"article": article}

    async def publish(self, post: Post) -> Published:
        """POST /api/articles; a draft unless settings.publish."""
        if self._settings.publish:
            await self._articles.acquire()
        resp = await self._request("POST", "/api/articles", limiter=self._writes, json=self.article_body(post))
        return _published(_json(resp, "POST /api/articles"))

    async def update(self, remote_id: str, post: Post) -> Published:
        """PUT /api/articles/{id}: replace an article's title, body, tags and description with `post`'s.

        The hidden marker stays in the body (find_existing still knows it), and `published` is not sent:
        Forem turns a live article back into a draft on `published: false`, so its state is left as it is.
        """
        body = self.article_body(post)
        body["article"].pop("published")
        if not remote_id.isdigit():
            raise PermanentError(PLATFORM, f"article id {remote_id!r} is not a Dev.to id")
        resp = await self._request("PUT", f"/api/articles/{remote_id}", limiter=self._writes, json=body)
        return _published(_json(resp, "PUT /api/articles/{id}"))

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        """The article of /api/articles/me/all that carries this key's hidden marker, or None."""
        mark = marker(idempotency_key)
        async for article in self._pages("/api/articles/me/all"):
            if mark in (article.get("body_markdown") or ""):
                return _published(article)
        return None

    async def metrics(self, published: Sequence[Published]) -> list[Metrics]:
        """Views, reactions and comments from /api/articles/me (published articles, paged)."""
        wanted = {p.remote_id for p in published}
        found: dict[str, Metrics] = {}
        if wanted:
            async for article in self._pages("/api/articles/me"):
                rid = str(article.get("id"))
                if rid in wanted:
                    found[rid] = Metrics(
                        PLATFORM,
                        rid,
                        views=article.get("page_views_count"),
                        reactions=article.get("public_reactions_count"),
                        comments=article.get("comments_count"),
                    )
                    if len(found) == len(wanted):
                        break
        return [found.get(p.remote_id) or Metrics(PLATFORM, p.remote_id) for p in published]

    async def _pages(self, path: str):  # noqa: ANN202
        for page in range(1, MAX_PAGES + 1):
            resp = await self._request("GET", path, params={"page": page, "per_page": PER_PAGE})
            items = _json(resp, f"GET {path}")
            for item in items:
                yield item
            if len(items) < PER_PAGE:
                return


def _json(resp: httpx.Response, what: str) -> Any:  # noqa: ANN401
    """The answer's JSON; an unreadable (truncated, garbage) body is retryable and ambiguous: look it up later."""
    try:
        return resp.json()
    except ValueError as exc:
        raise RetryableError(PLATFORM, f"unreadable answer to {what} ({type(exc).__name__})",
                             status=resp.status_code) from None


def _published(article: dict[str, Any]) -> Published:
    extra = {k: str(article[k]) for k in ("path", "slug") if article.get(k) is not None}
    # Only an explicit true is public: an answer that does not say is treated as a draft.
    extra["published"] = "true" if article.get("published") is True else "false"
    return Published(PLATFORM, str(article["id"]), str(article.get("url") or ""), extra)


def _error_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.reason_phrase or f"HTTP {resp.status_code}"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:500]
    return resp.reason_phrase or f"HTTP {resp.status_code}"
