"""The task store: one row per feed item the orchestrator works on, with its typed messages.

    planned -> researched -> drafted -> (held) -> approved -> published
                                     \\-> rejected | failed | expired

Every step writes the new status and the message it produced in one database
transaction before the next step starts, so a crashed cycle resumes from the
stored status without redoing (or paying for) a finished step.

Several workers share the table: `claim()` takes the next task of a status
with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, and with an atomic
UPDATE ... WHERE claimed_by IS NULL on SQLite; a claim is a lease that another
worker may take over once it is older than `claim_ttl` (a crashed worker).

Errors:
    TaskError
     +-- TaskNotFound          no task with that id (or prefix)
     +-- InvalidTransition     e.g. approving a task that is not held
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Index, Text, func, or_, select, update
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from agents.messages import Brief, Draft, FeedItem, Review
from config.db import is_postgres, migrate

MIGRATIONS = Path(__file__).parent / "migrations_tasks"
VERSION_TABLE = "alembic_version_agents_tasks"

PLANNED, RESEARCHED, DRAFTED, HELD, APPROVED = "planned", "researched", "drafted", "held", "approved"
PUBLISHED, REJECTED, FAILED, EXPIRED = "published", "rejected", "failed", "expired"
STATUSES = (PLANNED, RESEARCHED, DRAFTED, HELD, APPROVED, PUBLISHED, REJECTED, FAILED, EXPIRED)
IN_PROGRESS = (PLANNED, RESEARCHED, DRAFTED)
FINAL = (PUBLISHED, REJECTED, FAILED, EXPIRED)
DEFAULT_CLAIM_TTL = timedelta(minutes=15)

tasks_registry = registry()
metadata = tasks_registry.metadata


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class TaskBase(SQLModel, registry=tasks_registry):
    pass


class TaskRow(TaskBase, table=True):
    """One unit of work: a feed item on its way to a published post."""

    __tablename__ = "task"
    __table_args__ = (Index("ix_task_persona_status_created", "persona", "status", "created_at"),)

    id: str = Field(primary_key=True, max_length=64)
    persona: str = Field(max_length=64)
    cycle_id: str = Field(max_length=64, index=True)  # the cycle that planned it
    status: str = Field(max_length=16)
    feed_url: str = Field(default="", max_length=2000)
    item_url: str = Field(default="", max_length=2000, index=True)
    content_hash: str = Field(default="", max_length=128, index=True)
    arm: str = Field(default="", max_length=300)  # bandit arm: "<feed_url>|<tag>"
    novelty: float = 1.0  # 0..1, a topic measure, not money
    score: int | None = None  # the critic's last score
    messages: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    cost: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))  # ucr so far
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    reasons: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = None
    held_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


TASK = TaskRow.__table__


class TaskError(Exception):
    """Base of task store errors."""


class TaskNotFound(TaskError):
    """No task with that id."""

    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"no task {task_id!r}")


class InvalidTransition(TaskError):
    """The task is not in a status that allows the change."""

    def __init__(self, task_id: str, status: str, wanted: str):
        self.task_id = task_id
        self.status = status
        self.wanted = wanted
        super().__init__(f"task {task_id} is {status}; cannot make it {wanted}")


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

    @classmethod
    def from_row(cls, r: Any) -> Task:  # noqa: ANN401
        """Build from a `task` row."""
        return cls(
            id=r.id, persona=r.persona, cycle_id=r.cycle_id, status=r.status,
            messages=Messages.from_json(r.messages), feed_url=r.feed_url, item_url=r.item_url,
            content_hash=r.content_hash, arm=r.arm, novelty=r.novelty, score=r.score, cost=int(r.cost),
            explanation=r.explanation, reasons=list(json.loads(r.reasons or "[]")), attempts=r.attempts,
            claimed_by=r.claimed_by, held_until=r.held_until, created_at=r.created_at, updated_at=r.updated_at,
        )


def new_task_id() -> str:
    """A fresh task id."""
    return uuid.uuid4().hex


class TaskStore:
    """Tasks of one persona in the state database."""

    def __init__(
        self,
        engine: Engine,
        *,
        persona: str = "default",
        clock: Callable[[], datetime] = utcnow,
        claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    ):
        self.engine = engine
        # For transactions that read, then write: BEGIN IMMEDIATE on SQLite takes the write lock up
        # front (a deferred one gets SQLITE_BUSY at once in WAL mode when it upgrades, no busy_timeout).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self.persona = persona
        self.clock = clock
        self.claim_ttl = claim_ttl

    def migrate(self) -> None:
        """Create or upgrade the task table."""
        migrate(self.engine, MIGRATIONS, VERSION_TABLE)

    # -- writing -------------------------------------------------------------

    def create(
        self,
        *,
        cycle_id: str,
        items: Sequence[FeedItem],
        arm: str = "",
        novelty: float = 1.0,
        explanation: str = "",
        claimed_by: str | None = None,
        task_id: str | None = None,
    ) -> Task:
        """Store a planned task for one or more feed items (optionally claimed at once)."""
        now = self.clock()
        first = items[0]
        row = {
            "id": task_id or new_task_id(), "persona": self.persona, "cycle_id": cycle_id, "status": PLANNED,
            "feed_url": first.feed_url[:2000], "item_url": first.url[:2000], "content_hash": first.content_hash[:128],
            "arm": arm[:300], "novelty": float(novelty), "messages": Messages(items=list(items)).to_json(),
            "cost": 0, "explanation": explanation, "reasons": "[]", "attempts": 0,
            "claimed_by": claimed_by, "claimed_at": now if claimed_by else None,
            "created_at": now, "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(TASK.insert().values(**row))
        return self.get(row["id"])

    def advance(
        self,
        task: Task,
        status: str,
        *,
        expect: str | Sequence[str] | None = None,
        reason: str | None = None,
        cost: int | None = None,
        held_until: datetime | None = None,
        release: bool = False,
        **fields: Any,  # noqa: ANN401
    ) -> Task:
        """Persist the task's messages and its new status together (only if it is still in `expect`)."""
        if status not in STATUSES:
            raise TaskError(f"unknown status {status!r}")
        expected = (task.status,) if expect is None else ((expect,) if isinstance(expect, str) else tuple(expect))
        reasons = [*task.reasons, reason] if reason else task.reasons
        values: dict[str, Any] = {
            "status": status, "messages": task.messages.to_json(), "reasons": json.dumps(reasons, ensure_ascii=False),
            "updated_at": self.clock(), "score": task.score, "attempts": task.attempts, **fields,
        }
        if cost is not None:
            values["cost"] = cost
        if held_until is not None or status != HELD:
            values["held_until"] = held_until
        if release or status in FINAL:
            values["claimed_by"] = None
            values["claimed_at"] = None
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TASK).where(TASK.c.id == task.id, TASK.c.status.in_(expected)).values(**values)
            ).rowcount
        if not done:
            current = self.get(task.id)
            raise InvalidTransition(task.id, current.status, status)
        return self.get(task.id)

    def note(self, task: Task, *, reason: str | None = None, attempts: int | None = None, cost: int | None = None) -> Task:
        """Record a reason / attempt count / cost without changing the status."""
        return self.advance(
            task if attempts is None else _with(task, attempts=attempts), task.status, reason=reason, cost=cost,
            held_until=task.held_until,
        )

    def approve(self, task_id: str) -> Task:
        """A person approves a held draft: it publishes on the next cycle."""
        task = self.get(task_id)
        return self.advance(task, APPROVED, expect=HELD, reason="approved by a person")

    def reject(self, task_id: str, reason: str | None = None) -> Task:
        """A person rejects a held (or approved, not yet published) draft."""
        task = self.get(task_id)
        return self.advance(task, REJECTED, expect=(HELD, APPROVED), reason=f"rejected by a person: {reason or 'no reason given'}")

    def expire_held(self, now: datetime | None = None) -> list[str]:
        """Mark held drafts past their deadline as expired; returns their ids."""
        now = now or self.clock()
        with self._writer.begin() as conn:
            ids = [
                r.id
                for r in conn.execute(
                    select(TASK.c.id).where(
                        TASK.c.persona == self.persona, TASK.c.status == HELD, TASK.c.held_until < now
                    )
                ).all()
            ]
            expired = []
            for tid in ids:
                reasons = json.loads(conn.execute(select(TASK.c.reasons).where(TASK.c.id == tid)).scalar_one() or "[]")
                done = conn.execute(
                    update(TASK).where(TASK.c.id == tid, TASK.c.status == HELD).values(
                        status=EXPIRED, updated_at=now,
                        reasons=json.dumps([*reasons, "held draft expired without a decision"]),
                    )
                ).rowcount
                if done:
                    expired.append(tid)
        return expired

    # -- claiming ------------------------------------------------------------

    def claim(self, status: str | Sequence[str], worker: str) -> Task | None:
        """Take the oldest unclaimed task in `status` for `worker`; None when there is none."""
        statuses = (status,) if isinstance(status, str) else tuple(status)
        now = self.clock()
        stale = now - self.claim_ttl
        free = or_(TASK.c.claimed_by.is_(None), TASK.c.claimed_at < stale)
        base = select(TASK.c.id).where(TASK.c.persona == self.persona, TASK.c.status.in_(statuses), free)
        base = base.order_by(TASK.c.created_at, TASK.c.id)
        if is_postgres(self.engine):
            with self.engine.begin() as conn:
                tid = conn.execute(base.limit(1).with_for_update(skip_locked=True)).scalar()
                if tid is None:
                    return None
                conn.execute(update(TASK).where(TASK.c.id == tid).values(claimed_by=worker, claimed_at=now))
            return self.get(tid)
        # SQLite has one writer at a time: an atomic conditional UPDATE is the claim.
        for _ in range(16):
            with self._writer.begin() as conn:
                tid = conn.execute(base.limit(1)).scalar()
                if tid is None:
                    return None
                done = conn.execute(
                    update(TASK).where(TASK.c.id == tid, TASK.c.status.in_(statuses), free).values(
                        claimed_by=worker, claimed_at=now
                    )
                ).rowcount
            if done:
                return self.get(tid)
        return None

    def release(self, task_id: str, worker: str) -> None:
        """Give a claim back (only the claiming worker's)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(TASK).where(TASK.c.id == task_id, TASK.c.claimed_by == worker).values(claimed_by=None, claimed_at=None)
            )

    def release_all(self, worker: str) -> int:
        """Give back every claim `worker` holds; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(TASK).where(TASK.c.persona == self.persona, TASK.c.claimed_by == worker).values(
                    claimed_by=None, claimed_at=None
                )
            ).rowcount

    # -- reading -------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        """One task by id, or by a unique id prefix of at least 6 characters."""
        with self.engine.connect() as conn:
            row = conn.execute(select(TASK).where(TASK.c.id == task_id)).first()
            if row is None and len(task_id) >= 6:
                rows = conn.execute(
                    select(TASK).where(TASK.c.persona == self.persona, TASK.c.id.startswith(task_id)).limit(2)
                ).all()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise TaskNotFound(task_id)
        return Task.from_row(row)

    def list(self, statuses: Sequence[str] | None = None, *, limit: int = 100) -> list[Task]:
        """Tasks of this persona, newest first, optionally of some statuses."""
        stmt = select(TASK).where(TASK.c.persona == self.persona)
        if statuses:
            stmt = stmt.where(TASK.c.status.in_(tuple(statuses)))
        stmt = stmt.order_by(TASK.c.created_at.desc(), TASK.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [Task.from_row(r) for r in conn.execute(stmt).all()]

    def known_items(self, urls: Sequence[str], hashes: Sequence[str]) -> set[str]:
        """Which of these item URLs / content hashes already have a task (any status)."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(list(urls), 500):
                found.update(conn.execute(select(TASK.c.item_url).where(TASK.c.item_url.in_(chunk))).scalars())
            for chunk in _chunks([h for h in hashes if h], 500):
                found.update(conn.execute(select(TASK.c.content_hash).where(TASK.c.content_hash.in_(chunk))).scalars())
        return found

    def counts(self) -> dict[str, int]:
        """How many tasks of this persona are in each status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TASK.c.status, func.count()).where(TASK.c.persona == self.persona).group_by(TASK.c.status)
            ).all()
        return {s: int(n) for s, n in rows}

    def published_arms(self) -> list[tuple[str, str, list[str]]]:
        """(task id, arm, post keys) of every published task, for the bandit's history."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TASK.c.id, TASK.c.arm).where(TASK.c.persona == self.persona, TASK.c.status == PUBLISHED)
            ).all()
        return [(r.id, r.arm, [post_key(r.id)]) for r in rows]


def post_key(task_id: str) -> str:
    """The stable idempotency key of the post made from a task."""
    return f"selfpub-{task_id}"


def _with(task: Task, **changes: Any) -> Task:  # noqa: ANN401
    from dataclasses import replace

    return replace(task, **changes)


def _chunks(seq: list, n: int):  # noqa: ANN001, ANN202
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
