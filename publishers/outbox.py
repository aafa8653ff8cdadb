"""Exactly-once delivery: an outbox row is committed before every remote call.

    deliver(publisher, post)
      row (key, platform) committed as `pending`            <- before any remote call
      row in `sent` from an earlier attempt?                 <- ambiguous outcome
          -> publisher.find_existing(key, post); found -> `done`, never post again
      claim: pending|sent|failed -> sent, attempts + 1 (conditional UPDATE, so two
             workers cannot both send)
      publisher.publish(post)
          ok              -> `done` with remote id / url / extra
          PermanentError  -> `failed` (the platform refused: nothing was created)
          RetryableError  -> stays `sent` (may have been created: look up next time)
          anything else   -> stays `sent` (a crash is ambiguous too)

Errors raised: the publisher's RetryableError / PermanentError, and
RetryableError("... in progress") when another worker holds the row.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opentelemetry import trace
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from config.db import migrate as migrate_room
from publishers.models import DONE, FAILED, PENDING, SENT, OutboxRow, utcnow
from publishers.protocol import PermanentError, Post, Published, Publisher, PublishError, RetryableError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.publishers")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_publishers"
DEFAULT_ATTEMPTS = 3
MAX_INLINE_RETRY_AFTER = 60.0  # longer Retry-After: give up now, the scheduler retries later
BACKOFF_SECONDS = 1.0


@dataclass(frozen=True)
class OutboxRecord:
    """One delivered post on one platform, with the task it came from."""

    key: str
    platform: str
    task_id: str | None
    status: str
    attempts: int
    published: Published | None
    last_error: str | None
    published_at: datetime | None


def _record(row: OutboxRow) -> OutboxRecord:
    published = None
    if row.status == DONE and row.remote_id is not None:
        published = Published(row.platform, row.remote_id, row.url or "", json.loads(row.extra or "{}"))
    return OutboxRecord(row.key, row.platform, row.task_id, row.status, row.attempts, published, row.last_error, row.published_at)


class Outbox:
    """The publishers' outbox table and the delivery procedure around it."""

    def __init__(self, engine: Engine, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.engine = engine
        # _ensure_row reads, then inserts: BEGIN IMMEDIATE, so it waits for the write lock up front
        # (a deferred read-then-write transaction gets SQLITE_BUSY at once in WAL mode).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self._sleep = sleep

    def migrate(self) -> None:
        """Create or upgrade the outbox tables (own Alembic history)."""
        migrate_room(self.engine, MIGRATIONS, VERSION_TABLE)

    # -- reads ---------------------------------------------------------------------

    def get(self, key: str, platform: str) -> OutboxRecord | None:
        """The outbox record of one post on one platform, or None."""
        with Session(self.engine) as s:
            row = s.exec(select(OutboxRow).where(OutboxRow.key == key, OutboxRow.platform == platform)).first()
            return _record(row) if row else None

    def published(self, platform: str | None = None) -> list[OutboxRecord]:
        """Every post that exists remotely (status done), oldest first."""
        with Session(self.engine) as s:
            q = select(OutboxRow).where(OutboxRow.status == DONE)
            if platform is not None:
                q = q.where(OutboxRow.platform == platform)
            return [_record(r) for r in s.exec(q.order_by(OutboxRow.id))]

    # -- delivery ------------------------------------------------------------------

    async def deliver(self, publisher: Publisher, post: Post, *, attempts: int = DEFAULT_ATTEMPTS) -> Published:
        """Publish `post` with `publisher` exactly once, retrying retryable errors a few times."""
        for attempt in range(1, attempts + 1):
            try:
                return await self._deliver_once(publisher, post)
            except RetryableError as exc:
                wait = exc.retry_after if exc.retry_after is not None else BACKOFF_SECONDS * 2 ** (attempt - 1)
                if attempt == attempts or wait > MAX_INLINE_RETRY_AFTER:
                    raise
                log.info(
                    "publish retry",
                    extra={"platform": publisher.name, "key": post.key, "attempt": attempt, "wait": wait, "status": exc.status},
                )
                await self._sleep(wait)
        raise AssertionError("unreachable")

    async def _deliver_once(self, publisher: Publisher, post: Post) -> Published:
        platform = publisher.name
        row = self._ensure_row(post, platform)
        if row.status == DONE:
            return _record(row).published  # type: ignore[return-value]
        if row.status == SENT:
            with tracer.start_as_current_span("outbox.find_existing", attributes={"platform": platform}):
                found = await publisher.find_existing(post.key, post)
            if found is not None:
                log.info("publish resolved by lookup", extra={"platform": platform, "key": post.key})
                return self._complete(row, found)
        self._claim(row)
        try:
            with tracer.start_as_current_span("outbox.publish", attributes={"platform": platform}):
                published = await publisher.publish(post)
        except PermanentError as exc:
            self._fail(row, exc, FAILED)
            raise
        except RetryableError as exc:
            self._fail(row, exc, SENT)
            raise
        return self._complete(row, published)

    def _ensure_row(self, post: Post, platform: str) -> OutboxRow:
        with Session(self._writer, expire_on_commit=False) as s:
            row = s.exec(select(OutboxRow).where(OutboxRow.key == post.key, OutboxRow.platform == platform)).first()
            if row is not None:
                return row
            row = OutboxRow(key=post.key, platform=platform, task_id=post.task_id, status=PENDING)
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # another worker inserted it first
                s.rollback()
                return s.exec(select(OutboxRow).where(OutboxRow.key == post.key, OutboxRow.platform == platform)).one()
            return row

    def _claim(self, row: OutboxRow) -> None:
        """pending|sent|failed -> sent, only if nobody changed the row since we read it."""
        with Session(self.engine) as s:
            result = s.exec(
                update(OutboxRow)
                .where(OutboxRow.id == row.id, OutboxRow.status == row.status, OutboxRow.attempts == row.attempts)
                .values(status=SENT, attempts=row.attempts + 1, updated_at=utcnow())
            )
            s.commit()
        if result.rowcount != 1:
            raise RetryableError(row.platform, f"post {row.key} is being delivered by another worker")
        row.status, row.attempts = SENT, row.attempts + 1

    def _complete(self, row: OutboxRow, published: Published) -> Published:
        now = utcnow()
        with Session(self.engine) as s:
            s.exec(
                update(OutboxRow)
                .where(OutboxRow.id == row.id)
                .values(
                    status=DONE,
                    remote_id=published.remote_id,
                    url=published.url,
                    extra=json.dumps(dict(published.extra), sort_keys=True),
                    last_error=None,
                    last_status=None,
                    updated_at=now,
                    published_at=now,
                )
            )
            s.commit()
        log.info("published", extra={"platform": row.platform, "key": row.key, "remote_id": published.remote_id})
        return published

    def _fail(self, row: OutboxRow, exc: PublishError, status: str) -> None:
        with Session(self.engine) as s:
            s.exec(
                update(OutboxRow)
                .where(OutboxRow.id == row.id)
                .values(status=status, last_error=str(exc)[:1000], last_status=exc.status, updated_at=utcnow())
            )
            s.commit()
        log.warning(
            "publish failed",
            extra={"platform": row.platform, "key": row.key, "status": exc.status, "retryable": status == SENT,
                   "error": str(exc)[:300]},
        )
