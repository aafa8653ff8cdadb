"""Bluesky adapter over an injected atproto `Client` (sync; each call runs in a thread).

Errors (classified by exception type and HTTP status, never by message text):
    PublishError
     +-- RetryableError   no response (timeout, connection reset, httpx.TransportError),
     |                    an unreadable answer (truncated or garbled JSON: ValueError),
     |                    429 (Retry-After), 5xx,
     |                    local rate limit (write points, createSession)
     +-- PermanentError   400, 401, 403, 413, a missing handle/app password

Exactly once: every record of a post is created with a deterministic record key
(a TID derived from the post key and the part number), so a retried create can
never make a second post; the PDS answers a repeated key with an error and the
record is then read back with getRecord.

The session string is kept in a 0600 file and reused across restarts;
refreshed sessions are persisted from on_session_change. createSession is only
called when there is no usable session (30 per 5 minutes, 300 per day).

Links in the record (publishers.urls.LinkPolicy): a link facet only for the
post's own article (link_url, canonical_url) or the app's host; the link card's
title and description come from a fetched page, so they are untrusted text
(`card_text`: control and format characters out, whitespace collapsed, links
removed, bounded in graphemes); the page and its og:image are fetched only from
the article's own host (the image URL resolved as a browser would, every
redirect checked against that host, never followed off it).

Automated-account label (`automated_label=True`, config publishers.bluesky.automated_label):
every post record carries the atproto self-label "bot" (com.atproto.label.defs#selfLabels),
and before the first post of a process the account's profile record (app.bsky.actor.profile/self)
is given the same self-label, Bluesky's automated-account badge, keeping its other fields.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import grapheme
import httpx
from atproto_client import exceptions as atx
from atproto_client.client.session import SessionEvent
from atproto_client.models.utils import get_model_as_dict
from opentelemetry import trace
from pydantic import SecretStr

from publishers.facets import Link, detect_facets, grapheme_length, shorten_url, split_thread
from publishers.protocol import Metrics, PermanentError, Post, Published, PublishError, RetryableError
from publishers.ratelimit import BLUESKY_CREATE_POINTS, Limiter, bluesky_limiters
from publishers.urls import BLUESKY_APP_URL, LinkPolicy, Target, resolve, text_links

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.publishers")

PLATFORM = "bluesky"
COLLECTION = "app.bsky.feed.post"
PROFILE = "app.bsky.actor.profile"
SELF_LABELS = "com.atproto.label.defs#selfLabels"
BOT_LABEL = "bot"  # Bluesky's self-label of an automated account
MAX_BLOB_BYTES = 976_000  # app.bsky.embed.external thumb limit
MAX_PAGE_BYTES = 2_000_000
MAX_IMAGE_BYTES = 20_000_000  # an og:image larger than this is not downloaded to be shrunk
MAX_REDIRECTS = 5
CARD_TITLE_MAX = 300  # graphemes
CARD_DESCRIPTION_MAX = 1000
GET_POSTS_BATCH = 25
_B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"

T = TypeVar("T")


def tid_from_key(key: str) -> str:
    """A valid, deterministic 13-character TID (base32-sortable, top bit zero) for `key`."""
    n = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") & ((1 << 63) - 1)
    out = []
    for _ in range(13):
        out.append(_B32_SORTABLE[n & 31])
        n >>= 5
    return "".join(reversed(out))


def part_key(post_key: str, index: int) -> str:
    """The record key of part `index` of the thread for `post_key`."""
    return tid_from_key(post_key if index == 0 else f"{post_key}#{index}")


def classify(exc: Exception, what: str) -> PublishError:
    """Map an atproto SDK exception to RetryableError / PermanentError."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    content = getattr(response, "content", None)
    code = getattr(content, "error", None)
    detail = getattr(content, "message", None)
    message = f"{what}: " + ": ".join(str(x) for x in (code, detail) if x) if (code or detail) else f"{what}: {type(exc).__name__}"
    if isinstance(exc, atx.LoginRequiredError):
        return PermanentError(PLATFORM, f"{what}: login required")
    if status is None:  # no response at all: timeout, reset, refused
        return RetryableError(PLATFORM, message)
    if status == 429:
        retry_after = exc.retry_after if isinstance(exc, atx.RateLimitExceededError) else None
        return RetryableError(PLATFORM, message, status=429, retry_after=retry_after)
    if status >= 500 or status in (408, 409):
        return RetryableError(PLATFORM, message, status=status)
    return PermanentError(PLATFORM, message, status=status)


def _classified(exc: Exception, what: str) -> PublishError:
    """classify(), plus what the SDK does not wrap: a transport error, or an answer it cannot parse.

    A 2xx whose body is truncated or garbled JSON raises ValueError in the SDK's parser. After a
    write that is ambiguous (the record may exist), so it is retryable: the retry's getRecord by the
    deterministic key finds it.
    """
    if isinstance(exc, atx.AtProtocolError):
        return classify(exc, what)
    if isinstance(exc, ValueError):
        return RetryableError(PLATFORM, f"{what}: malformed answer ({type(exc).__name__})")
    return RetryableError(PLATFORM, f"{what}: {type(exc).__name__}")


def _plain(value: Any) -> dict:
    """A record value the SDK returned (a model or a dict) as a plain JSON dict with its $type keys."""
    if isinstance(value, dict):
        return dict(value)
    return dict(get_model_as_dict(value))


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _OpenGraph(HTMLParser):
    """Collects <meta property="og:*"> and <title>."""

    def __init__(self) -> None:
        super().__init__()
        self.og: dict[str, str] = {}
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "meta":
            prop = a.get("property") or a.get("name") or ""
            if prop.startswith("og:") and prop not in self.og:
                self.og[prop] = a.get("content", "")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


# Whatever could still read as a link once the characters around it are gone, beyond what Bluesky
# detects: scheme URLs (also "https:\\host"), www. hosts, host/path with any TLD, the schemes that
# run or send something.
_LINKISH = re.compile(
    r"[a-z][a-z0-9+.-]*:(?://|\\\\)\S*|\bwww\.\S+|\b(?:[a-z0-9-]+\.)+[a-z]{2,63}/\S*"
    r"|\b(?:javascript|vbscript|data|file|mailto):\S+",
    re.IGNORECASE,
)
_KEEP_FORMAT = {"\u200d"}  # the zero-width joiner holds emoji sequences together


def card_text(text: str, limit: int) -> str:
    """Untrusted page text made safe for a card: no control/format characters, one line, no links, bounded."""
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text or ""
        if ch.isspace() or ch in _KEEP_FORMAT or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    for _ in range(4):  # removing one link must not join the text around it into another
        before = text
        for start, end, _uri in reversed(text_links(text)):
            text = text[:start] + " " + text[end:]
        text = " ".join(_LINKISH.sub(" ", text).split())
        if text == before:
            break
    if grapheme.length(text) > limit:
        text = grapheme.slice(text, 0, limit - 1).rstrip() + "…"
    return text


def shrink_image(data: bytes, limit: int = MAX_BLOB_BYTES) -> tuple[bytes, str] | None:
    """(bytes, mime) of the image under `limit` bytes, re-encoded as JPEG when needed; None to drop it."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        fmt = (img.format or "").upper()
        img.load()
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if len(data) <= limit and fmt in ("JPEG", "PNG", "WEBP", "GIF"):
        return data, f"image/{fmt.lower()}"
    img = img.convert("RGB")
    for side, quality in ((2000, 85), (1200, 80), (1000, 70), (800, 60), (600, 50)):
        candidate = img.copy()
        candidate.thumbnail((side, side))
        buf = io.BytesIO()
        candidate.save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= limit:
            return buf.getvalue(), "image/jpeg"
    return None


@dataclass(frozen=True)
class Card:
    """The link card of a post (app.bsky.embed.external)."""

    uri: str
    title: str
    description: str
    thumb: dict | None = None


class BlueskyPublisher:
    """Posts (threads with facets and a link card) to any PDS through an atproto Client."""

    name = PLATFORM

    def __init__(
        self,
        client: Any,
        *,
        handle: str,
        password: SecretStr | None,
        session_path: Path,
        http: httpx.AsyncClient | None = None,
        points: Limiter | None = None,
        sessions: Limiter | None = None,
        app_url: str = BLUESKY_APP_URL,
        automated_label: bool = False,
    ):
        self._client = client
        self._handle = handle
        self._password = password
        self._session_path = Path(session_path)
        self._http = http
        default_points, default_sessions = bluesky_limiters()
        self.points = points or default_points
        self._sessions = sessions or default_sessions
        self._app_url = app_url.rstrip("/")
        self.automated_label = automated_label
        self._profile_labelled = False
        self._did: str | None = None
        self._session_did: str | None = None
        self._login_lock = asyncio.Lock()
        self._file_lock = threading.Lock()
        self._no_appview_logged = False
        self.session_creates = 0
        client.on_session_change(self._on_session_change)

    # -- session -------------------------------------------------------------------

    def _on_session_change(self, event: Any, session: Any) -> None:
        self._session_did = session.did
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            self._write_session(session.encode())

    def _write_session(self, text: str) -> None:
        with self._file_lock:
            self._session_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._session_path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self._session_path)

    async def _login(self, *, fresh: bool = False) -> str:
        async with self._login_lock:
            if self._did is not None and not fresh:
                return self._did
            stored = None if fresh or not self._session_path.exists() else self._session_path.read_text().strip()
            if stored:
                try:
                    await asyncio.to_thread(self._client.login, session_string=stored, fetch_bsky_profile=False)
                except (atx.AtProtocolError, httpx.TransportError, ValueError) as exc:
                    raise _classified(exc, "refreshSession") from None
                log.info("bluesky session reused", extra={"handle": self._handle})
            else:
                if self._password is None:
                    raise PermanentError(PLATFORM, "no app password configured (publishers.bluesky.app_password)")
                await self._sessions.acquire()
                self.session_creates += 1
                try:
                    with tracer.start_as_current_span("bluesky createSession"):
                        await asyncio.to_thread(
                            self._client.login, self._handle, self._password.get_secret_value(), fetch_bsky_profile=False
                        )
                except (atx.AtProtocolError, httpx.TransportError, ValueError) as exc:
                    raise _classified(exc, "createSession") from None
                log.info("bluesky session created", extra={"handle": self._handle})
            self._did = self._session_did
            return self._did

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call in a thread, logging in first; a dead stored session logs in afresh once."""
        await self._login()
        for attempt in (1, 2):
            try:
                with tracer.start_as_current_span(f"bluesky {what}"):
                    return await asyncio.to_thread(fn, *args, **kwargs)
            except atx.UnauthorizedError as exc:
                if attempt == 2 or self._password is None:
                    raise classify(exc, what) from None
                log.info("bluesky session expired; logging in again", extra={"handle": self._handle})
                await self._login(fresh=True)
            except atx.BadRequestError as exc:
                content = getattr(exc.response, "content", None)
                if attempt == 1 and getattr(content, "error", None) in ("ExpiredToken", "InvalidToken") and self._password:
                    await self._login(fresh=True)
                    continue
                raise classify(exc, what) from None
            except atx.AtProtocolError as exc:
                raise classify(exc, what) from None
            except (httpx.TransportError, ValueError) as exc:
                raise _classified(exc, what) from None
        raise AssertionError("unreachable")

    # -- records -------------------------------------------------------------------

    def thread_texts(self, post: Post) -> tuple[list[str], Link | None]:
        """The texts of the thread's posts and the link shown in the first one."""
        text = post.bsky_text.strip()
        link = post.link_url
        if not link or link in text:
            return split_thread(text), None
        shown = shorten_url(link)
        parts = split_thread(text, reserve_first=grapheme_length(shown) + 2)
        parts[0] = f"{parts[0]}\n\n{shown}"
        return parts, Link(shown, link)

    def link_policy(self, post: Post) -> LinkPolicy:
        """The links a record of this post may carry: the article itself and the app's own host."""
        return LinkPolicy(sources=tuple(u for u in (post.link_url, post.canonical_url) if u), platforms=(self._app_url,))

    def _record(
        self, text: str, link: Link | None, card: Card | None, reply: dict | None, policy: LinkPolicy
    ) -> dict:
        record: dict[str, Any] = {"$type": COLLECTION, "text": text, "createdAt": _now_iso()}
        facets = detect_facets(text, [link] if link else [], policy=policy)
        if facets:
            record["facets"] = facets
        if card is not None:
            external: dict[str, Any] = {"uri": card.uri, "title": card.title, "description": card.description}
            if card.thumb is not None:
                external["thumb"] = card.thumb
            record["embed"] = {"$type": "app.bsky.embed.external", "external": external}
        if reply is not None:
            record["reply"] = reply
        if self.automated_label:
            record["labels"] = {"$type": SELF_LABELS, "values": [{"val": BOT_LABEL}]}
        return record

    async def _label_profile(self) -> None:
        """Give the account's profile record the "bot" self-label once, keeping its other fields."""
        if not self.automated_label or self._profile_labelled:
            return
        did = await self._login()
        try:
            rec = await self._call("getRecord", self._client.com.atproto.repo.get_record,
                                   {"repo": did, "collection": PROFILE, "rkey": "self"})
            profile = _plain(rec.value)
        except PermanentError as exc:
            if exc.status != 400:  # 400: RecordNotFound, the account has no profile record yet
                raise
            profile = {}
        labels = profile.get("labels") if isinstance(profile.get("labels"), dict) else {}
        values = [v for v in labels.get("values") or [] if isinstance(v, dict)]
        if not any(v.get("val") == BOT_LABEL for v in values):
            profile.update({"$type": PROFILE, "labels": {"$type": SELF_LABELS, "values": [*values, {"val": BOT_LABEL}]}})
            await self._call("putRecord", self._client.com.atproto.repo.put_record,
                             {"repo": did, "collection": PROFILE, "rkey": "self", "record": profile})
            log.info("bluesky profile self-labelled as automated", extra={"handle": self._handle})
        self._profile_labelled = True

    async def _card(self, post: Post) -> Card | None:
        link = post.link_url
        article = resolve(link) if link else None
        if link is None or article is None or not article.web or article.userinfo:
            return None
        title, description, image_url, page = post.title, post.description, None, article
        if self._http is not None:
            fetched = await self._fetch_on_host(article, article, MAX_PAGE_BYTES, "link card page")
            if fetched is not None:
                page, resp = fetched
                og = _OpenGraph()
                og.feed(resp.text)
                title = card_text(og.og.get("og:title") or og.title, CARD_TITLE_MAX) or title
                description = card_text(og.og.get("og:description") or "", CARD_DESCRIPTION_MAX) or description
                image_url = og.og.get("og:image")
        thumb = await self._thumb(image_url, page, article) if image_url else None
        return Card(uri=link, title=card_text(title, CARD_TITLE_MAX), description=card_text(description, CARD_DESCRIPTION_MAX),
                    thumb=thumb)

    async def _fetch_on_host(
        self, url: Target, host_of: Target, limit: int, what: str
    ) -> tuple[Target, httpx.Response] | None:
        """GET `url`, following redirects only while they stay on `host_of`'s host; None when it leaves or fails."""
        assert self._http is not None
        for _ in range(MAX_REDIRECTS + 1):
            if not url.web or url.userinfo or url.origin != host_of.origin:
                log.info(f"{what} not fetched: not on the article's host", extra={"url": str(url), "host": host_of.host})
                return None
            try:
                resp = await self._http.get(str(url), follow_redirects=False)
            except httpx.HTTPError as exc:
                log.info(f"{what} not fetched", extra={"url": str(url), "error": type(exc).__name__})
                return None
            if not resp.is_redirect:
                ok = resp.status_code == 200 and len(resp.content) <= limit
                return (url, resp) if ok else None
            nxt = resolve(resp.headers.get("location", ""), url)
            if nxt is None:
                return None
            url = nxt
        return None

    async def _thumb(self, image_url: str, page: Target, article: Target) -> dict | None:
        """The og:image as an uploaded blob, when it resolves to the article's own host; None otherwise."""
        target = resolve(image_url, page)
        if target is None:
            return None
        fetched = await self._fetch_on_host(target, article, MAX_IMAGE_BYTES, "og:image")
        if fetched is None:
            return None
        _, resp = fetched
        shrunk = await asyncio.to_thread(shrink_image, resp.content)
        if shrunk is None:
            log.info("og:image dropped (not an image, or cannot be shrunk)", extra={"url": str(target), "bytes": len(resp.content)})
            return None
        data, mime = shrunk
        uploaded = await self._call("uploadBlob", self._client.com.atproto.repo.upload_blob, data)
        blob = uploaded.blob
        return {"$type": "blob", "ref": {"$link": str(blob.cid)}, "mimeType": blob.mime_type or mime, "size": blob.size}

    async def _get(self, rkey: str) -> tuple[str, str] | None:
        """(uri, cid) of our record with this key, or None."""
        did = await self._login()
        try:
            rec = await self._call(
                "getRecord",
                self._client.com.atproto.repo.get_record,
                {"repo": did, "collection": COLLECTION, "rkey": rkey},
            )
        except PermanentError as exc:
            if exc.status == 400:  # RecordNotFound
                return None
            raise
        return rec.uri, rec.cid

    async def _create(self, rkey: str, record: dict) -> tuple[str, str]:
        did = await self._login()
        await self.points.acquire(BLUESKY_CREATE_POINTS)
        try:
            out = await self._call(
                "createRecord",
                self._client.com.atproto.repo.create_record,
                {"repo": did, "collection": COLLECTION, "rkey": rkey, "record": record},
            )
        except RetryableError as exc:
            if exc.status == 429 and exc.retry_after is not None:
                self.points.block_for(exc.retry_after)
            # the record key may already exist (an earlier attempt whose answer was lost)
            existing = await self._get(rkey)
            if existing is not None:
                return existing
            raise
        return out.uri, out.cid

    # -- Publisher -----------------------------------------------------------------

    async def publish(self, post: Post) -> Published:
        """Create the thread (root with link card and facets, then replies) with deterministic keys."""
        texts, link = self.thread_texts(post)
        await self._label_profile()
        card = await self._card(post)
        policy = self.link_policy(post)
        refs: list[tuple[str, str]] = []
        for i, text in enumerate(texts):
            reply = None
            if refs:
                reply = {"root": {"uri": refs[0][0], "cid": refs[0][1]}, "parent": {"uri": refs[-1][0], "cid": refs[-1][1]}}
            record = self._record(text, link if i == 0 else None, card if i == 0 else None, reply, policy)
            refs.append(await self._create(part_key(post.key, i), record))
        return self._published(post, refs)

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        """The thread if every part exists (getRecord by deterministic key); None otherwise."""
        texts, _ = self.thread_texts(post)
        refs = []
        for i in range(len(texts)):
            ref = await self._get(part_key(idempotency_key, i))
            if ref is None:
                return None  # publish() fills in the missing parts, reusing existing ones
            refs.append(ref)
        return self._published(post, refs)

    def _published(self, post: Post, refs: list[tuple[str, str]]) -> Published:
        uri, cid = refs[0]
        rkey = uri.rsplit("/", 1)[-1]
        return Published(
            PLATFORM,
            uri,
            f"{self._app_url}/profile/{self._handle}/post/{rkey}",
            {"uri": uri, "cid": cid, "rkey": rkey, "thread": " ".join(u for u, _ in refs)},
        )

    async def metrics(self, published: Sequence[Published]) -> list[Metrics]:
        """Likes, reposts, replies and quotes via app.bsky.feed.getPosts (25 per call); None without an AppView."""
        found: dict[str, Metrics] = {}
        uris = [p.remote_id for p in published]
        for start in range(0, len(uris), GET_POSTS_BATCH):
            batch = uris[start : start + GET_POSTS_BATCH]
            try:
                resp = await self._call("getPosts", self._client.get_posts, batch)
            except PermanentError as exc:
                if exc.status in (400, 404, 501):  # a bare PDS has no AppView to answer app.bsky.*
                    if not self._no_appview_logged:
                        log.warning("bluesky: no metrics (no AppView answers getPosts)", extra={"status": exc.status})
                        self._no_appview_logged = True
                    break
                raise
            for view in resp.posts:
                found[view.uri] = Metrics(
                    PLATFORM,
                    view.uri,
                    likes=view.like_count,
                    reposts=view.repost_count,
                    replies=view.reply_count,
                    quotes=view.quote_count,
                )
        return [found.get(u) or Metrics(PLATFORM, u) for u in uris]
