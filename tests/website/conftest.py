"""A real state with published posts, and the real site serving it on 127.0.0.1.

    published_state   SQLite state (daemon.state.open_state) with PUBLISHED articles, made as the
                      orchestrator makes them: task -> brief -> draft -> approved -> publish_all
                      through the real channel (local publisher, outbox, slugs) -> published;
                      compute booked with each task id. Plus what must never show: a held draft,
                      a rejected one, and an approved one not delivered anywhere yet.
    site              daemon.site.build_site on that state, listening on a free port
    raw(site, bytes)  one raw HTTP exchange (for what httpx would normalise away)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agents.messages import Brief, Draft, FeedItem, KeyPoint
from agents.tasks import APPROVED, DRAFTED, HELD, PUBLISHED, REJECTED, RESEARCHED, TaskStore, post_key
from config.settings import Settings
from daemon.site import build_site
from daemon.state import open_state
from daemon.wiring_publishers import build_channel
from ledger import Entry
from publishers.protocol import Post
from website import SiteServer

PUBLIC_URL = "https://blog.example.test"
HELD_TITLE = "Zebra held draft nobody approved"
REJECTED_TITLE = "Quokka rejected draft"
UNDELIVERED_TITLE = "Narwhal approved but not yet out"
ARTICLES = (
    ("Rust 1.80 ships LazyCell", "https://blog.rust-lang.org/2024/07/25/Rust-1.80.0.html", 12_345),
    ("SQLite adds JSONB <fast> & small", "https://sqlite.org/jsonb.html", 2_000_001),
)


def body(title: str, source: str) -> str:
    """An article body with a source link, raw HTML, a link the policy refuses and a script URL."""
    return (f"# {title}\n\nRead [the announcement]({source}) for details.\n\n"
            "<script>alert('x')</script> and <b>bold</b> stay text.\n\n"
            "Not a source: [evil](https://evil.example/phish) and [js](javascript:alert(1)).\n\n"
            "![tracker](https://evil.example/pixel.png)\n")


@dataclass
class PublishedState:
    settings: Settings
    engine: Engine
    slugs: dict[str, str] = field(default_factory=dict)  # title -> slug
    costs: dict[str, int] = field(default_factory=dict)  # title -> ucr
    task_ids: dict[str, str] = field(default_factory=dict)  # title -> task id


def _item(n: int, url: str) -> FeedItem:
    return FeedItem(feed_url="https://feeds.example.test/rss", url=url, title=f"Item {n}", summary="s",
                    content_hash=f"hash-{n}")


def _drafted(tasks: TaskStore, n: int, title: str, source: str):  # noqa: ANN202 - a claimed Task
    task = tasks.create(cycle_id="c1", items=[_item(n, source)], claimed_by="w1")
    task.messages.brief = Brief(topic=f"topic {n}", angle="what changed",
                                key_points=(KeyPoint(claim=f"claim {n}", source_url=source),), sources=(source,))
    task = tasks.advance(task, RESEARCHED)
    task.messages.drafts.append(Draft(title=title, body_markdown=body(title, source), tags=("rust", "sqlite"),
                                      description=f"About {title}", bsky_text=f"New: {title}"))
    return tasks.advance(task, DRAFTED)


async def make_state(root: Path, *, public_url: str | None = PUBLIC_URL, site: dict | None = None) -> PublishedState:
    """The state described in the module docstring, under `root`."""
    settings = Settings(
        state_dir=root / "state",
        site={"enabled": True, "port": 0, "title": "Agent's <notes>",
              **({"public_url": public_url} if public_url else {}), **(site or {})},
        publishers={"local": {"enabled": True, "directory": root / "outbox"}},
        http={"enabled": False},
    )
    state = open_state(settings)
    out = PublishedState(settings, state.engine)
    tasks = TaskStore(state.engine, persona=settings.persona)
    channel = build_channel(settings, state.engine)
    try:
        for n, (title, source, cost) in enumerate(ARTICLES):
            task = _drafted(tasks, n, title, source)
            state.journal.post("compute", [Entry("expenses:compute:writer", cost),
                                           Entry("liabilities:provider:embedded", -cost)],
                               idempotency_key=f"compute-{task.id}", task_id=task.id)
            task = tasks.advance(task, APPROVED, release=True)
            draft = task.messages.draft
            done = await channel.publish_all(Post(
                key=post_key(task.id), title=draft.title, body_markdown=draft.body_markdown, bsky_text=draft.bsky_text,
                tags=draft.tags, description=draft.description, task_id=task.id))
            task.messages.published = [{"platform": p.platform, "remote_id": p.remote_id, "url": p.url} for p in done]
            tasks.advance(task, PUBLISHED)
            out.slugs[title] = channel.slugs.slug_of(post_key(task.id))
            out.costs[title] = cost
            out.task_ids[title] = task.id
            await asyncio.sleep(0.01)  # distinct publish times: the index order is by them
        held = _drafted(tasks, 10, HELD_TITLE, "https://held.example.test/a")
        tasks.advance(held, HELD, release=True)
        rejected = _drafted(tasks, 11, REJECTED_TITLE, "https://rejected.example.test/a")
        tasks.advance(rejected, REJECTED)
        waiting = _drafted(tasks, 12, UNDELIVERED_TITLE, "https://waiting.example.test/a")
        waiting = tasks.advance(waiting, APPROVED, release=True)
        # its slug is taken (the dispatcher does that first) but nothing was delivered yet
        channel.slugs.assign(post_key(waiting.id), UNDELIVERED_TITLE, waiting.id)
        out.slugs[UNDELIVERED_TITLE] = channel.slugs.slug_of(post_key(waiting.id))
        out.slugs[HELD_TITLE] = channel.slugs.assign(post_key(held.id), HELD_TITLE, held.id)
    finally:
        await channel.aclose()
    return out


@pytest.fixture
async def published_state(tmp_path: Path) -> AsyncIterator[PublishedState]:
    """Published articles and hidden drafts in a real SQLite state."""
    state = await make_state(tmp_path)
    yield state
    state.engine.dispose()


@pytest.fixture
async def site(published_state: PublishedState) -> AsyncIterator[SiteServer]:
    """The real site server over the published state, on 127.0.0.1 and a free port."""
    server = build_site(published_state.settings, published_state.engine)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def base_url(server: SiteServer) -> str:
    """http://host:port of a started server."""
    host, port = server.address
    return f"http://{host}:{port}"


async def raw(server: SiteServer, request: bytes, *, timeout: float = 10.0) -> bytes:
    """Send `request` as it is over one connection and read the answer until the server closes or answers."""
    host, port = server.address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        data = b""
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
        return data
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])
