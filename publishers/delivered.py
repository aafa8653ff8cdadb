"""The outbox's delivered posts, read with SQLAlchemy Core: what read-only commands need, without the ORM.

    Delivered(engine).published(platform=None)   [OutboxRecord] status done, oldest first

`selfpub ledger report` names each task's posts from here (daemon/posts.py's posts_of takes
anything with `published()`); importing this module loads no SQLModel and no SQLAlchemy ORM,
so the command starts faster (tests/daemon/test_cli_startup.py guards it). Outbox.published
reads through it too: one implementation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, text

from publishers.protocol import Published

UTC = timezone.utc
DONE = "done"  # publishers.models.DONE, without importing the ORM models
_COLUMNS = "key, platform, task_id, status, attempts, remote_id, url, extra, last_error, published_at"


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


def as_utc(value: Any) -> datetime | None:  # noqa: ANN401 - a driver's timestamp: str (SQLite) or datetime
    """A stored timestamp as an aware UTC datetime, as the ORM's UTCDateTime column returns it."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.utcoffset() is None else when.astimezone(UTC)


def record(key: str, platform: str, task_id: str | None, status: str, attempts: int, remote_id: str | None,
           url: str | None, extra: str | None, last_error: str | None, published_at: Any) -> OutboxRecord:  # noqa: ANN401
    """An OutboxRecord from an outbox row's columns (in _COLUMNS' order)."""
    published = None
    if status == DONE and remote_id is not None:
        published = Published(platform, remote_id, url or "", json.loads(extra or "{}"))
    return OutboxRecord(key, platform, task_id, status, attempts, published, last_error, as_utc(published_at))


class Delivered:
    """Read-only view of the outbox table: the posts that exist remotely."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def published(self, platform: str | None = None) -> list[OutboxRecord]:
        """Every post that exists remotely (status done), oldest first."""
        where, params = "status = :done", {"done": DONE}
        if platform is not None:
            where, params = where + " AND platform = :platform", {**params, "platform": platform}
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT {_COLUMNS} FROM publishers_outbox WHERE {where} ORDER BY id"), params)
            return [record(*row) for row in rows]
