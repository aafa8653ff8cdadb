"""The task store: one row per feed item the orchestrator works on, with its typed messages.

    planned -> researched -> drafted -> (held) -> approved -> published
                                     \\-> rejected | failed | expired

Every step writes the new status and the message it produced in one database
transaction before the next step starts, so a crashed cycle resumes from the
stored status without redoing (or paying for) a finished step.

Claims: several workers share the table, and a task is worked on by one at a time.

    claim(status, worker) --> Claim(task, worker, token), lease_until = now + lease
         |   SELECT ... FOR UPDATE SKIP LOCKED (PostgreSQL), a conditional UPDATE (SQLite)
         |   free = no token, or lease_until passed (its worker died or hung: taken over)
         v
    renew(claim)          lease_until = now + lease  (a heartbeat while a step awaits its model)
    advance/note(task)    UPDATE ... WHERE claim_token = task.claim.token: the token is a fence
    release(claim)        token, worker and lease cleared

A Task returned by claim() or create(claimed_by=...) carries its Claim, and
every write through it is a conditional UPDATE on the token: once another
worker has taken the task over, the old worker's write changes nothing and
raises ClaimLost (its step's result is dropped). A Task read with get()
carries no claim: writing through it (a person approving a draft) is refused
while a live claim is held by a worker.

Errors (retryable None: one that reaches the daemon's job policy stops the daemon; the
orchestrator handles ClaimLost itself):
    TaskError
     +-- TaskNotFound          no task with that id (or prefix)
     +-- InvalidTransition     e.g. approving a task that is not held
     +-- ClaimLost             the claim expired and another worker took the task over (or it was released)
     +-- TaskBusy              a person's change to a task a worker holds right now
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    or_,
    select,
    update,
)

from agents.messages import FeedItem
# The statuses and the data classes live in agents/task_rows.py (no SQLAlchemy: `drafts list` reads there); re-exported.
from agents.task_rows import (  # noqa: F401
    APPROVED,
    DRAFTED,
    EXPIRED,
    FAILED,
    FINAL,
    HELD,
    IN_PROGRESS,
    PLANNED,
    PUBLISHED,
    REJECTED,
    RESEARCHED,
    STATUSES,
    Claim,
    Messages,
    Task,
    list_tasks,
)
from kernel.clock import utcnow
from kernel.db import is_postgres, migrate
from kernel.sqltypes import UTCDateTime

MIGRATIONS = Path(__file__).parent / "migrations_tasks"
VERSION_TABLE = "alembic_version_agents_tasks"

# A claim's lease: short, because the holder renews it while a step runs (every lease / 3); a worker
# that died or hung loses its tasks this long after its last renewal.
DEFAULT_LEASE = timedelta(minutes=2)

metadata = MetaData()

# One unit of work: a feed item on its way to a published post. A SQLAlchemy Core table (the store
# reads and writes it with Core statements: no ORM, no SQLModel); the list read is agents/task_rows.py's.
TASK = Table(
    "task",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("persona", String(64), nullable=False),
    Column("cycle_id", String(64), nullable=False, index=True),  # the cycle that planned it
    Column("status", String(16), nullable=False),
    Column("feed_url", String(2000), nullable=False, default=""),
    Column("item_url", String(2000), nullable=False, default="", index=True),
    Column("content_hash", String(128), nullable=False, default="", index=True),
    Column("arm", String(300), nullable=False, default=""),  # bandit arm: "<feed_url>|<tag>"
    Column("novelty", Float, nullable=False, default=1.0),  # 0..1, a topic measure, not money
    Column("score", Integer, nullable=True),  # the critic's last score
    Column("messages", Text, nullable=False, default="{}"),
    Column("cost", BigInteger, nullable=False, default=0),  # ucr so far
    Column("explanation", Text, nullable=False, default=""),
    Column("reasons", Text, nullable=False, default="[]"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("claim_token", String(64), nullable=True),  # the fence: changes with every claim
    Column("lease_until", UTCDateTime(), nullable=True),  # the claim may be taken over after this
    Column("held_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    Index("ix_task_persona_status_created", "persona", "status", "created_at"),
)


class TaskError(Exception):
    """Base of task store errors."""

    retryable: bool | None = None


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


class ClaimLost(TaskError):
    """The claim on a task is no longer ours (expired and taken over, or released): nothing was written."""

    def __init__(self, task_id: str, worker: str, holder: str | None):
        self.task_id = task_id
        self.worker = worker
        self.holder = holder
        now = f"held by {holder}" if holder else "no longer claimed"
        super().__init__(f"task {task_id}: the claim of {worker} was lost ({now}); its step's result is dropped")


class TaskBusy(TaskError):
    """A change without a claim to a task a worker holds right now (e.g. rejecting a draft being published)."""

    def __init__(self, task_id: str, holder: str | None, until: datetime | None):
        self.task_id = task_id
        self.holder = holder
        self.until = until
        super().__init__(
            f"task {task_id} is being worked on by {holder or 'a worker'} right now; try again in a minute"
        )


def new_task_id() -> str:
    """A fresh task id."""
    return uuid.uuid4().hex


def new_token() -> str:
    """A fresh claim token."""
    return uuid.uuid4().hex


class TaskStore:
    """Tasks of one persona in the state database."""

    def __init__(
        self,
        engine: Engine,
        *,
        persona: str = "default",
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = DEFAULT_LEASE,
    ):
        self.engine = engine
        # For transactions that read, then write: BEGIN IMMEDIATE on SQLite takes the write lock up
        # front (a deferred one gets SQLITE_BUSY at once in WAL mode when it upgrades, no busy_timeout).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self.persona = persona
        self.clock = clock
        self.lease = lease

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
        claim = Claim(task_id or new_task_id(), claimed_by, new_token()) if claimed_by else None
        row = {
            "id": claim.task_id if claim else (task_id or new_task_id()), "persona": self.persona, "cycle_id": cycle_id, "status": PLANNED,
            "feed_url": first.feed_url[:2000], "item_url": first.url[:2000], "content_hash": first.content_hash[:128],
            "arm": arm[:300], "novelty": float(novelty), "messages": Messages(items=list(items)).to_json(),
            "cost": 0, "explanation": explanation, "reasons": "[]", "attempts": 0,
            "claimed_by": claimed_by, "claimed_at": now if claim else None,
            "claim_token": claim.token if claim else None, "lease_until": now + self.lease if claim else None,
            "created_at": now, "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(TASK.insert().values(**row))
        return self._read(row["id"], claim)

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
        """Persist the task's messages and its new status together (only if it is still in `expect`).

        Through a claimed task the write is fenced by its token (ClaimLost when another worker
        took it over); through an unclaimed one it is refused while a worker holds it (TaskBusy).
        """
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
        released = release or status in FINAL
        if released:
            values.update(_UNCLAIMED)
        now = values["updated_at"]
        claim = task.claim
        if claim is not None:
            mine = TASK.c.claim_token == claim.token
        else:
            mine = or_(TASK.c.claim_token.is_(None), TASK.c.lease_until < now)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TASK).where(TASK.c.id == task.id, TASK.c.status.in_(expected), mine).values(**values)
            ).rowcount
        if not done:
            current = self._row(task.id)
            if claim is not None and current.claim_token != claim.token:
                raise ClaimLost(task.id, claim.worker, current.claimed_by if current.claim_token else None)
            if current.status in expected and claim is None:
                raise TaskBusy(task.id, current.claimed_by, current.lease_until)
            raise InvalidTransition(task.id, current.status, status)
        return self._read(task.id, None if released else claim)

    def note(self, task: Task, *, reason: str | None = None, attempts: int | None = None, cost: int | None = None) -> Task:
        """Record a reason / attempt count / cost without changing the status."""
        return self.advance(
            task if attempts is None else replace(task, attempts=attempts), task.status, reason=reason, cost=cost,
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
        """Take the oldest free task in `status` for `worker` (a Task carrying its Claim); None when none is free."""
        statuses = (status,) if isinstance(status, str) else tuple(status)
        now = self.clock()
        free = or_(TASK.c.claim_token.is_(None), TASK.c.lease_until < now)
        base = select(TASK.c.id).where(TASK.c.persona == self.persona, TASK.c.status.in_(statuses), free)
        base = base.order_by(TASK.c.created_at, TASK.c.id)
        token = new_token()
        held = {"claimed_by": worker, "claimed_at": now, "claim_token": token, "lease_until": now + self.lease}
        if is_postgres(self.engine):
            with self.engine.begin() as conn:
                tid = conn.execute(base.limit(1).with_for_update(skip_locked=True)).scalar()
                if tid is None:
                    return None
                conn.execute(update(TASK).where(TASK.c.id == tid).values(**held))
            return self._read(tid, Claim(tid, worker, token))
        # SQLite has one writer at a time: an atomic conditional UPDATE is the claim.
        for _ in range(16):
            with self._writer.begin() as conn:
                tid = conn.execute(base.limit(1)).scalar()
                if tid is None:
                    return None
                done = conn.execute(
                    update(TASK).where(TASK.c.id == tid, TASK.c.status.in_(statuses), free).values(**held)
                ).rowcount
            if done:
                return self._read(tid, Claim(tid, worker, token))
        return None

    def renew(self, claim: Claim) -> datetime:
        """Extend the claim's lease from now; returns the new end, or raises ClaimLost."""
        until = self.clock() + self.lease
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TASK).where(TASK.c.id == claim.task_id, TASK.c.claim_token == claim.token).values(
                    lease_until=until
                )
            ).rowcount
        if not done:
            row = self._row(claim.task_id)
            raise ClaimLost(claim.task_id, claim.worker, row.claimed_by if row.claim_token else None)
        return until

    def release(self, claim: Claim) -> bool:
        """Give a claim back (only while it is still this claim); True when it was."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(TASK).where(TASK.c.id == claim.task_id, TASK.c.claim_token == claim.token).values(**_UNCLAIMED)
            ).rowcount)

    def release_all(self, worker: str) -> int:
        """Give back every claim `worker` holds; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(
                update(TASK).where(TASK.c.persona == self.persona, TASK.c.claimed_by == worker).values(**_UNCLAIMED)
            ).rowcount

    # -- reading -------------------------------------------------------------

    def _row(self, task_id: str) -> Any:  # noqa: ANN401 - a Row of `task`
        with self.engine.connect() as conn:
            row = conn.execute(select(TASK).where(TASK.c.id == task_id)).first()
        if row is None:
            raise TaskNotFound(task_id)
        return row

    def _read(self, task_id: str, claim: Claim | None) -> Task:
        return Task.from_row(self._row(task_id), claim)

    def get(self, task_id: str) -> Task:
        """One task by id, or by a unique id prefix of at least 6 characters (without a claim)."""
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
        return list_tasks(self.engine, self.persona, statuses, limit=limit)

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

    def statuses(self, task_ids: Sequence[str]) -> dict[str, str]:
        """task id -> status, for the ids of this persona that exist (a read for the site: no messages loaded)."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(task_ids)), 500):
                rows = conn.execute(
                    select(TASK.c.id, TASK.c.status).where(TASK.c.persona == self.persona, TASK.c.id.in_(chunk))
                ).all()
                found.update({r.id: r.status for r in rows})
        return found

    def published_arms(self) -> list[tuple[str, str, list[str]]]:
        """(task id, arm, post keys) of every published task, for the bandit's history."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TASK.c.id, TASK.c.arm).where(TASK.c.persona == self.persona, TASK.c.status == PUBLISHED)
            ).all()
        return [(r.id, r.arm, [post_key(r.id)]) for r in rows]


_UNCLAIMED = {"claimed_by": None, "claimed_at": None, "claim_token": None, "lease_until": None}


def post_key(task_id: str) -> str:
    """The stable idempotency key of the post made from a task."""
    return f"selfpub-{task_id}"


def _chunks(seq: list, n: int):  # noqa: ANN001, ANN202
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
