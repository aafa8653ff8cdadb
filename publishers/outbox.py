"""Exactly-once delivery: an outbox row is committed before every remote call, and one claim works it.

    deliver(publisher, post)
      row (key, platform) committed as `pending`              <- before any remote call
      done?  -> the stored result, never post again
      claim: a fresh fencing token, owner and lease,          <- only if nobody holds it, or the
             set by one conditional UPDATE                       holder's lease expired, or the
                                                                  holder is provably dead (lease.py)
             held by a live process -> wait (poll), then OutboxBusy
      row was `sent` (an earlier attempt may have created it)
          -> publisher.find_existing(key, post); found -> `done`, never post again
      mark `sent`, attempts + 1, lease extended               <- the fence right before the send
      publisher.publish(post)    while a renewal task keeps the lease alive
          ok              -> `done` with remote id / url / extra
          PermanentError  -> `failed` (the platform refused: nothing was created)
          RetryableError  -> stays `sent` (may have been created: look up next time)
          anything else   -> stays `sent` (a crash is ambiguous too)
      the claim is released on every way out (token, owner and lease cleared)

Fencing: every UPDATE of a claimed row says `WHERE claim_token = :ours`; a step
whose token was taken over writes nothing (ClaimLost) and the new holder
resolves the row by look-up. A takeover compares-and-sets the token it judged
expired (`WHERE claim_token = :seen AND lease_until <= :now`), so a renewal
that lands first wins. The same statements serialise on SQLite (one writer)
and PostgreSQL (a conditional UPDATE re-checks its WHERE on the newest row).

What fencing cannot cover: a holder frozen for longer than the lease between
its `sent` mark and its request leaving the machine. Keep `lease_seconds`
well above any pause and the HTTP timeout; hosts sharing a PostgreSQL need
clocks within a small fraction of it (NTP).

Errors raised:
    the publisher's RetryableError / PermanentError
    OutboxBusy(RetryableError)   a live process holds the row longer than busy_wait
    ClaimLost(RetryableError)    our claim was taken over mid-step: we wrote nothing
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import trace
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from kernel.clock import utcnow
from kernel.db import migrate as migrate_room
from publishers import lease
from publishers.delivered import Delivered, OutboxRecord, record  # noqa: F401 - OutboxRecord re-exported
from publishers.models import DONE, FAILED, PENDING, SENT, OutboxRow
from publishers.protocol import PermanentError, Post, Published, Publisher, PublishError, RetryableError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.publishers")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_publishers"
DEFAULT_ATTEMPTS = 3
MAX_INLINE_RETRY_AFTER = 60.0  # longer Retry-After: give up now, the scheduler retries later
BACKOFF_SECONDS = 1.0
DEFAULT_LEASE_SECONDS = 120.0  # well above the adapters' HTTP timeouts and any plausible pause
RENEWALS_PER_LEASE = 4  # a renewal every lease/4: three can fail (a busy database) before it lapses
BUSY_POLL_SECONDS = 0.5
DEFAULT_BUSY_WAIT_SECONDS = 60.0  # how long deliver() waits for another live process to finish the row

T = TypeVar("T")


class OutboxBusy(RetryableError):
    """Another live process holds the row (its send is in flight); try again later."""


class ClaimLost(RetryableError):
    """Our claim was taken over (our lease lapsed): this step wrote nothing; the new holder resolves the row."""


@dataclass(frozen=True)
class Claim:
    """A held claim on one outbox row; `status` is the row's status when it was claimed."""

    row_id: int
    key: str
    platform: str
    token: str
    status: str
    attempts: int


def _record(row: OutboxRow) -> OutboxRecord:
    return record(row.key, row.platform, row.task_id, row.status, row.attempts, row.remote_id, row.url, row.extra,
                  row.last_error, row.published_at)


class Outbox:
    """The publishers' outbox table and the delivery procedure around it."""

    def __init__(
        self,
        engine: Engine,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        renew_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        is_dead: Callable[[str], bool] = lease.provably_dead,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        busy_wait: float = DEFAULT_BUSY_WAIT_SECONDS,
        busy_poll: float = BUSY_POLL_SECONDS,
        on_wait: Callable[[str, str, str], None] | None = None,
    ):
        self.engine = engine
        # _ensure_row reads, then inserts: BEGIN IMMEDIATE, so it waits for the write lock up front
        # (a deferred read-then-write transaction gets SQLITE_BUSY at once in WAL mode).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self._sleep = sleep  # retry backoff and waiting for a busy row
        self._renew_sleep = renew_sleep  # the lease renewal's timer (separate: tests skip backoffs, not renewals)
        self._clock = clock
        self.owner = owner or lease.this_process()
        self._is_dead = is_dead
        self.lease = timedelta(seconds=lease_seconds)
        self.busy_wait = busy_wait
        self.busy_poll = busy_poll
        self._on_wait = on_wait  # (platform, key, holder) once per wait: a CLI tells its user why it pauses

    def migrate(self) -> None:
        """Create or upgrade the outbox tables (own Alembic history)."""
        migrate_room(self.engine, MIGRATIONS, VERSION_TABLE)

    # -- reads ---------------------------------------------------------------------

    def get(self, key: str, platform: str) -> OutboxRecord | None:
        """The outbox record of one post on one platform, or None."""
        row = self._row(key, platform)
        return _record(row) if row else None

    def published(self, platform: str | None = None) -> list[OutboxRecord]:
        """Every post that exists remotely (status done), oldest first."""
        return Delivered(self.engine).published(platform)

    def _row(self, key: str, platform: str) -> OutboxRow | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.exec(select(OutboxRow).where(OutboxRow.key == key, OutboxRow.platform == platform)).first()

    # -- delivery ------------------------------------------------------------------

    async def deliver(self, publisher: Publisher, post: Post, *, attempts: int = DEFAULT_ATTEMPTS) -> Published:
        """Publish `post` with `publisher` exactly once, retrying retryable errors a few times."""
        for attempt in range(1, attempts + 1):
            try:
                return await self._deliver_once(publisher, post)
            except RetryableError as exc:
                wait = exc.retry_after if exc.retry_after is not None else BACKOFF_SECONDS * 2 ** (attempt - 1)
                if attempt == attempts or wait > MAX_INLINE_RETRY_AFTER or isinstance(exc, OutboxBusy):
                    raise
                log.info(
                    "publish retry",
                    extra={"platform": publisher.name, "key": post.key, "attempt": attempt, "wait": wait, "status": exc.status},
                )
                await self._sleep(wait)
        raise AssertionError("unreachable")

    async def _deliver_once(self, publisher: Publisher, post: Post) -> Published:
        acquired = await self._acquire(post, publisher.name)
        if isinstance(acquired, Published):
            return acquired
        claim = acquired
        settled = False  # the row was completed or released under our token (or the token was lost)
        try:
            if claim.status == SENT:  # an earlier attempt may have created it: look up, never send blindly
                with tracer.start_as_current_span("outbox.find_existing", attributes={"platform": claim.platform}):
                    found = await self._renewed(claim, publisher.find_existing(post.key, post))
                if found is not None:
                    log.info("publish resolved by lookup", extra={"platform": claim.platform, "key": post.key})
                    settled = True
                    return self._finish(claim, found)
            if not self.mark_sent(claim):
                settled = True
                raise ClaimLost(claim.platform, f"claim on post {claim.key} was taken over before the send")
            try:
                with tracer.start_as_current_span("outbox.publish", attributes={"platform": claim.platform}):
                    published = await self._renewed(claim, publisher.publish(post))
            except PermanentError as exc:
                settled = True
                self.release(claim, status=FAILED, error=exc)
                raise
            except RetryableError as exc:
                settled = True
                self.release(claim, error=exc)
                raise
            settled = True
            return self._finish(claim, published)
        finally:
            if not settled:  # a lookup error, a bug or a cancellation: keep the status, free the row
                self.release(claim)

    async def _acquire(self, post: Post, platform: str) -> Claim | Published:
        """Our claim on the row, or the stored result when it is done; waits while a live process holds it."""
        waited = 0.0
        row: OutboxRow | None = self._ensure_row(post, platform)
        while True:
            assert row is not None  # rows are never deleted
            if row.status == DONE:
                return _record(row).published  # type: ignore[return-value]
            claim = self.claim(row)
            if claim is not None:
                return claim
            if waited == 0:
                holder = lease.describe(row.claim_owner)
                log.info("waiting for another process's claim", extra={"platform": platform, "key": post.key, "holder": holder})
                if self._on_wait is not None:
                    self._on_wait(platform, post.key, holder)
            if waited >= self.busy_wait:
                left = (row.lease_until or self._clock()) - self._clock()
                raise OutboxBusy(platform, f"post {post.key} is being delivered by another process ({lease.describe(row.claim_owner)})",
                                 retry_after=max(left.total_seconds(), self.busy_poll))
            await self._sleep(self.busy_poll)
            waited += self.busy_poll
            row = self._row(post.key, platform)

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

    async def _renewed(self, claim: Claim, call: Awaitable[T]) -> T:
        """Await the remote call while a background task renews the lease; a lost token stops the renewals."""

        async def renew() -> None:
            every = self.lease.total_seconds() / RENEWALS_PER_LEASE
            while True:
                await self._renew_sleep(every)
                if not self.renew(claim):
                    log.warning("outbox claim lost while the remote call was in flight",
                                extra={"platform": claim.platform, "key": claim.key})
                    return

        renewer = asyncio.ensure_future(renew())
        try:
            return await call
        finally:
            renewer.cancel()

    def _finish(self, claim: Claim, published: Published) -> Published:
        if not self.complete(claim, published):
            raise ClaimLost(claim.platform, f"claim on post {claim.key} was taken over; the new holder looks it up")
        log.info("published", extra={"platform": claim.platform, "key": claim.key, "remote_id": published.remote_id})
        return published

    # -- the claim's state changes (each one conditional: see the module docstring) --

    def claim(self, row: OutboxRow) -> Claim | None:
        """Take the row if nobody holds it, its lease expired or its holder is provably dead; else None."""
        now = self._clock()
        cond: list[Any] = [OutboxRow.id == row.id, OutboxRow.status != DONE]
        if row.claim_token is None:
            cond.append(OutboxRow.claim_token.is_(None))
        elif (row.lease_until or now) <= now:
            cond += [OutboxRow.claim_token == row.claim_token, OutboxRow.lease_until <= now]
        elif row.claim_owner and self._is_dead(row.claim_owner):
            cond += [OutboxRow.claim_token == row.claim_token, OutboxRow.claim_owner == row.claim_owner]
        else:
            return None
        token = uuid.uuid4().hex
        with Session(self.engine, expire_on_commit=False) as s:
            result = s.exec(
                update(OutboxRow).where(*cond)
                .values(claim_token=token, claim_owner=self.owner, lease_until=now + self.lease, updated_at=now)
            )
            s.commit()
            if result.rowcount != 1:
                return None
            held = s.exec(select(OutboxRow).where(OutboxRow.id == row.id, OutboxRow.claim_token == token)).first()
        if held is None:  # taken over already (our lease cannot lapse this fast unless the clock jumped)
            return None
        if row.claim_token is not None:
            log.warning("outbox claim taken over", extra={"platform": row.platform, "key": row.key,
                                                         "from": row.claim_owner, "status": held.status})
        return Claim(row.id, row.key, row.platform, token, held.status, held.attempts)  # type: ignore[arg-type]

    def mark_sent(self, claim: Claim) -> bool:
        """`sent`, attempts + 1, lease extended: the last write before the remote call; False if fenced out."""
        now = self._clock()
        return self._update(claim, status=SENT, attempts=OutboxRow.attempts + 1, lease_until=now + self.lease,
                            updated_at=now)

    def renew(self, claim: Claim) -> bool:
        """Extend the lease; False when the token is no longer ours."""
        now = self._clock()
        return self._update(claim, lease_until=now + self.lease)

    def complete(self, claim: Claim, published: Published) -> bool:
        """`done` with the remote post, claim cleared; False (nothing written) when fenced out."""
        now = self._clock()
        return self._update(
            claim,
            status=DONE,
            remote_id=published.remote_id,
            url=published.url,
            extra=json.dumps(dict(published.extra), sort_keys=True),
            last_error=None,
            last_status=None,
            updated_at=now,
            published_at=now,
            claim_token=None,
            claim_owner=None,
            lease_until=None,
        )

    def release(self, claim: Claim, *, status: str | None = None, error: PublishError | None = None) -> bool:
        """Give the row up (optionally with a new status and the error); False when fenced out."""
        values: dict[str, Any] = {"claim_token": None, "claim_owner": None, "lease_until": None, "updated_at": self._clock()}
        if status is not None:
            values["status"] = status
        if error is not None:
            values.update(last_error=str(error)[:1000], last_status=error.status)
            log.warning(
                "publish failed",
                extra={"platform": claim.platform, "key": claim.key, "status": error.status,
                       "retryable": status != FAILED, "error": str(error)[:300]},
            )
        return self._update(claim, **values)

    def _update(self, claim: Claim, **values: Any) -> bool:  # noqa: ANN401
        """The one way a claimed row is written: only while `claim.token` is still the row's token."""
        with Session(self.engine) as s:
            result = s.exec(
                update(OutboxRow).where(OutboxRow.id == claim.row_id, OutboxRow.claim_token == claim.token).values(**values)
            )
            s.commit()
        if result.rowcount != 1:
            log.warning("outbox write fenced out: the claim was taken over",
                        extra={"platform": claim.platform, "key": claim.key})
            return False
        return True
