"""A task as read from its row: the statuses, the typed messages, and the task list, without SQLAlchemy.

    STATUSES, HELD, ...            the task's statuses (agents/tasks.py draws their transitions)
    Claim, Messages, Task          a worker's claim, the task's messages, the task itself
    list_tasks(engine, persona)    newest first, optionally of some statuses: TaskStore.list,
                                   one statement on the DB-API cursor
    list_lines(engine, persona)    the same rows as `selfpub drafts list` shows them (DraftLine): the
                                   latest draft's title read from the stored JSON, no message built,
                                   so the command imports no pydantic either

agents/tasks.py (TaskStore: the table, the writes and the claims) imports all of these, and
re-exports them. They live here so `selfpub drafts list` reads its rows with the stdlib sqlite3
(kernel.dbapi.PlainEngine) and never imports SQLAlchemy; on PostgreSQL, or on a SQLAlchemy
Engine, the same statement runs on SQLAlchemy's raw cursor.
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kernel.clock import as_utc
from kernel.dbapi import placeholders

PLANNED, RESEARCHED, DRAFTED, HELD, APPROVED = "planned", "researched", "drafted", "held", "approved"
PUBLISHED, REJECTED, FAILED, EXPIRED = "published", "rejected", "failed", "expired"
STATUSES = (PLANNED, RESEARCHED, DRAFTED, HELD, APPROVED, PUBLISHED, REJECTED, FAILED, EXPIRED)
IN_PROGRESS = (PLANNED, RESEARCHED, DRAFTED)
FINAL = (PUBLISHED, REJECTED, FAILED, EXPIRED)

# What a task row holds that a Task is built from (Task.from_row reads them by name).
_COLUMNS = (
    "id", "persona", "cycle_id", "status", "messages", "feed_url", "item_url", "content_hash", "arm", "novelty",
    "score", "cost", "explanation", "reasons", "attempts", "claimed_by", "held_until", "created_at", "updated_at",
    "lease_until",
)
_Row = namedtuple("_Row", _COLUMNS)

if TYPE_CHECKING:  # imported by Messages.from_json: `drafts list` builds no message
    from agents.messages import Brief, Draft, FeedItem, Review


@dataclass(frozen=True)
class Claim:
    """One worker's claim on one task; `token` fences every write made under it."""

    task_id: str
    worker: str
    token: str


@dataclass
class Messages:
    """The typed messages of one task (its shared memory), stored as one JSON document."""

    items: list[FeedItem] = field(default_factory=list)
    brief: Brief | None = None
    drafts: list[Draft] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)  # reviews[i] reviews drafts[i]
    published: list[dict[str, Any]] = field(default_factory=list)

    @property
    def draft(self) -> Draft | None:
        """The latest draft."""
        return self.drafts[-1] if self.drafts else None

    def to_json(self) -> str:
        """Serialise to JSON text."""
        return json.dumps(
            {
                "items": [i.model_dump(mode="json") for i in self.items],
                "brief": self.brief.model_dump(mode="json") if self.brief else None,
                "drafts": [d.model_dump(mode="json") for d in self.drafts],
                "reviews": [r.model_dump(mode="json") for r in self.reviews],
                "published": self.published,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Messages:
        """Parse the stored JSON text back into typed messages."""
        from agents.messages import Brief, Draft, FeedItem, Review

        raw = json.loads(text or "{}")
        return cls(
            items=[FeedItem.model_validate(i) for i in raw.get("items", [])],
            brief=Brief.model_validate(raw["brief"]) if raw.get("brief") else None,
            drafts=[Draft.model_validate(d) for d in raw.get("drafts", [])],
            reviews=[Review.model_validate(r) for r in raw.get("reviews", [])],
            published=list(raw.get("published", [])),
        )


@dataclass
class Task:
    """A task as the orchestrator sees it."""

    id: str
    persona: str
    cycle_id: str
    status: str
    messages: Messages
    feed_url: str = ""
    item_url: str = ""
    content_hash: str = ""
    arm: str = ""
    novelty: float = 1.0
    score: int | None = None
    cost: int = 0
    explanation: str = ""
    reasons: list[str] = field(default_factory=list)
    attempts: int = 0
    claimed_by: str | None = None
    held_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    lease_until: datetime | None = None
    claim: Claim | None = None  # set only on a task this process claimed: writes through it are fenced

    @classmethod
    def from_row(cls, r: Any, claim: Claim | None = None) -> Task:  # noqa: ANN401
        """Build from a `task` row, SQLAlchemy's or a raw cursor's (with the caller's claim, when it holds one)."""
        return cls(
            id=r.id, persona=r.persona, cycle_id=r.cycle_id, status=r.status,
            messages=Messages.from_json(r.messages), feed_url=r.feed_url, item_url=r.item_url,
            content_hash=r.content_hash, arm=r.arm, novelty=r.novelty, score=r.score, cost=int(r.cost),
            explanation=r.explanation, reasons=list(json.loads(r.reasons or "[]")), attempts=r.attempts,
            claimed_by=r.claimed_by, held_until=as_utc(r.held_until), created_at=as_utc(r.created_at),
            updated_at=as_utc(r.updated_at), lease_until=as_utc(r.lease_until), claim=claim,
        )


@dataclass(frozen=True)
class DraftLine:
    """One task as `selfpub drafts list` shows it, read without building its messages."""

    id: str
    status: str
    score: int | None
    cost: int
    title: str  # the latest draft's title; the item's URL before any draft
    reasons: tuple[str, ...]
    held_until: datetime | None

    @classmethod
    def from_row(cls, r: Any) -> DraftLine:  # noqa: ANN401
        drafts = json.loads(r.messages or "{}").get("drafts") or []
        return cls(id=r.id, status=r.status, score=r.score, cost=int(r.cost),
                   title=drafts[-1]["title"] if drafts else r.item_url, reasons=tuple(json.loads(r.reasons or "[]")),
                   held_until=as_utc(r.held_until))


def list_tasks(
    engine: Any,  # noqa: ANN401 - a SQLAlchemy Engine or a kernel.dbapi.PlainEngine
    persona: str,
    statuses: Sequence[str] | None = None,
    *,
    limit: int = 100,
) -> list[Task]:
    """Tasks of `persona`, newest first, optionally of some statuses."""
    return [Task.from_row(row) for row in _rows(engine, persona, statuses, limit)]


def list_lines(
    engine: Any,  # noqa: ANN401 - a SQLAlchemy Engine or a kernel.dbapi.PlainEngine
    persona: str,
    statuses: Sequence[str] | None = None,
    *,
    limit: int = 100,
) -> list[DraftLine]:
    """The tasks list_tasks returns, as the lines `selfpub drafts list` prints."""
    return [DraftLine.from_row(row) for row in _rows(engine, persona, statuses, limit)]


def _rows(engine: Any, persona: str, statuses: Sequence[str] | None, limit: int) -> list[_Row]:  # noqa: ANN401
    where, params = "persona = ?", [persona]
    if statuses:
        where += f" AND status IN ({', '.join('?' * len(statuses))})"
        params += statuses
    sql = placeholders(f"SELECT {', '.join(_COLUMNS)} FROM task WHERE {where} ORDER BY created_at DESC, id LIMIT ?",
                       engine.dialect.name == "postgresql")
    with engine.connect() as conn:
        cur = conn.connection.cursor()
        cur.execute(sql, [*params, limit])
        return [_Row(*row) for row in cur.fetchall()]
