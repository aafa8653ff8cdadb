"""What the site may show: published articles only, read through the rooms' read functions.

    listing()                                            cached CACHE_SECONDS, newest first
      Outbox.published()        post keys with a `done` row on some platform, first published_at
      SlugStore.by_keys(keys)   their stored slugs (and task ids)
      TaskStore.statuses(ids)   this persona's tasks, status only
      shown = delivered somewhere AND status in SHOWN (approved, published, or failed after a
              platform took it) -- never planned, drafted, held, rejected or expired
    article(slug)               a listed slug only: TaskStore.get (draft, brief, items),
                                ledger.reads.task_costs (what its compute cost, ucr)

A held or rejected draft has no `done` outbox row and is never listed, so no
route can reach it whatever slug is asked for. Nothing here writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from agents.messages import Brief, FeedItem
from agents.tasks import APPROVED, FAILED, PUBLISHED, TaskNotFound, TaskStore
from ledger.journal import Journal
from ledger.reads import task_costs
from publishers.outbox import Outbox
from publishers.slugs import SlugStore, is_slug

SHOWN = (APPROVED, PUBLISHED, FAILED)  # with a delivered copy: approved and out (FAILED: a later platform refused)
CACHE_SECONDS = 5.0  # a flood of reads costs one listing query per this many seconds
ARTICLE_CACHE = 256  # articles kept ready (by slug)


@dataclass(frozen=True)
class Listed:
    """One article in the listing: enough for the index, the feed and the sitemap's order."""

    slug: str
    key: str
    task_id: str
    published_at: datetime


@dataclass(frozen=True)
class Article:
    """One published article with everything its pages show (cost in ucr)."""

    slug: str
    key: str
    task_id: str
    title: str
    description: str
    markdown: str
    tags: tuple[str, ...]
    sources: tuple[str, ...]
    published_at: datetime
    cost: int
    brief: Brief | None
    items: tuple[FeedItem, ...]


class SiteContent(Protocol):
    """The site's one seam to the state: published articles only."""

    def listing(self) -> list[Listed]:
        """Every published article, newest first."""
        ...

    def article(self, slug: str) -> Article | None:
        """The published article with this slug, or None (never a draft)."""
        ...

    def articles(self, limit: int) -> list[Article]:
        """The newest `limit` published articles, whole."""
        ...


class PublishedContent:
    """SiteContent over the state database of one persona."""

    def __init__(self, engine: Engine, persona: str, *, cache_seconds: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.tasks = TaskStore(engine, persona=persona)
        self.outbox = Outbox(engine)
        self.slugs = SlugStore(engine)
        self.journal = Journal(engine)
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._listing: tuple[float, list[Listed]] | None = None
        self._articles: dict[str, tuple[float, Article]] = {}

    def listing(self) -> list[Listed]:
        """Every published article, newest first (read again after cache_seconds)."""
        with self._lock:
            now = self._clock()
            if self._listing is None or now - self._listing[0] >= self.cache_seconds:
                self._listing = (now, self._read_listing())
            return self._listing[1]

    def _read_listing(self) -> list[Listed]:
        first: dict[str, datetime] = {}
        for record in self.outbox.published():
            if record.published_at is not None:
                seen = first.get(record.key)
                first[record.key] = record.published_at if seen is None else min(seen, record.published_at)
        slugs = {k: r for k, r in self.slugs.by_keys(first).items() if r.task_id}
        statuses = self.tasks.statuses([r.task_id for r in slugs.values() if r.task_id])
        listed = [Listed(r.slug, key, r.task_id, first[key]) for key, r in slugs.items()
                  if r.task_id and statuses.get(r.task_id) in SHOWN]
        return sorted(listed, key=lambda a: (a.published_at, a.slug), reverse=True)

    def article(self, slug: str) -> Article | None:
        """The published article with this slug, or None."""
        if not is_slug(slug):
            return None
        listed = next((a for a in self.listing() if a.slug == slug), None)
        if listed is None:
            return None
        with self._lock:
            cached = self._articles.get(slug)
            if cached is not None and self._clock() - cached[0] < self.cache_seconds:
                return cached[1]
        found = self._read_article(listed)
        if found is not None:
            with self._lock:
                if len(self._articles) >= ARTICLE_CACHE:
                    self._articles.clear()
                self._articles[slug] = (self._clock(), found)
        return found

    def _read_article(self, listed: Listed) -> Article | None:
        try:
            task = self.tasks.get(listed.task_id)
        except TaskNotFound:
            return None
        draft = task.messages.draft
        if draft is None or task.status not in SHOWN:
            return None
        brief = task.messages.brief
        cost = task_costs(self.journal, [task.id]).get(task.id, 0)
        return Article(
            slug=listed.slug, key=listed.key, task_id=task.id, title=draft.title, description=draft.description,
            markdown=draft.body_markdown, tags=tuple(draft.tags), sources=tuple(brief.sources) if brief else (),
            published_at=listed.published_at, cost=cost, brief=brief, items=tuple(task.messages.items),
        )

    def articles(self, limit: int) -> list[Article]:
        """The newest `limit` published articles, whole."""
        out = []
        for listed in self.listing()[:limit]:
            found = self.article(listed.slug)
            if found is not None:
                out.append(found)
        return out
