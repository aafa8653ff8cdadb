"""How fresh the chain data is: last successful sync, staleness, too-stale.

stale      the last successful chain call is older than wallet.stale_after_seconds
too stale  older than wallet.max_staleness_seconds (or failing that long since
           the first failure, when it never succeeded): the daemon pauses
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from kernel.clock import utcnow
from kernel.db import is_postgres
from wallet.models import SyncState

SYNC = SyncState.__table__


@dataclass(frozen=True)
class Freshness:
    """The staleness of chain data at one moment."""

    last_success_at: datetime | None
    failing_since: datetime | None
    last_error: str
    stale: bool
    too_stale: bool


class SyncClock:
    """Records chain successes and failures in wallet_sync and judges staleness."""

    def __init__(
        self,
        engine: Engine,
        chain_id: int,
        *,
        stale_after_seconds: int,
        max_staleness_seconds: int,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.engine = engine
        self.chain_id = chain_id
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.max_staleness = timedelta(seconds=max_staleness_seconds)
        self.clock = clock

    def _ensure(self, conn) -> None:  # noqa: ANN001
        if is_postgres(conn.engine):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(insert(SYNC).values(chain_id=self.chain_id, last_error="").on_conflict_do_nothing())

    def ok(self) -> None:
        """The chain answered now."""
        with self.engine.begin() as conn:
            self._ensure(conn)
            conn.execute(
                update(SYNC).where(SYNC.c.chain_id == self.chain_id).values(last_success_at=self.clock(), failing_since=None)
            )

    def failed(self, error: str) -> None:
        """The chain did not answer now (error is a class name or short reason, never a secret)."""
        now = self.clock()
        with self.engine.begin() as conn:
            self._ensure(conn)
            row = conn.execute(select(SYNC.c.failing_since).where(SYNC.c.chain_id == self.chain_id)).first()
            conn.execute(
                update(SYNC).where(SYNC.c.chain_id == self.chain_id).values(
                    last_error_at=now, last_error=error[:500], failing_since=row.failing_since or now
                )
            )

    def freshness(self) -> Freshness:
        """Staleness now, read from the database only (works while the node is down)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SYNC.c.last_success_at, SYNC.c.failing_since, SYNC.c.last_error).where(SYNC.c.chain_id == self.chain_id)
            ).first()
        now = self.clock()
        last = row.last_success_at if row else None
        failing = row.failing_since if row else None
        since = last or failing
        stale = last is None or now - last > self.stale_after
        too_stale = since is not None and now - since > self.max_staleness
        return Freshness(last, failing, (row.last_error if row and failing else ""), stale, too_stale)
