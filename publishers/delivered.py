"""The outbox's delivered posts, read on the DB-API cursor: what read-only commands need, without the ORM.

    Delivered(engine).published(platform=None)   [OutboxRecord] status done, oldest first

`selfpub ledger report` names each task's posts from here (daemon/posts.py's posts_of takes
anything with `published()`); importing this module loads no SQLAlchemy at all, and the read runs
on a SQLAlchemy Engine or on kernel.dbapi.PlainEngine (the stdlib sqlite3) alike, so the command
starts faster (tests/daemon/test_cli_startup.py guards it). Outbox.published reads through it
too: one implementation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.clock import as_utc
from kernel.dbapi import placeholders
from publishers.protocol import Published

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


def record(key: str, platform: str, task_id: str | None, status: str, attempts: int, remote_id: str | None,
           url: str | None, extra: str | None, last_error: str | None, published_at: Any) -> OutboxRecord:  # noqa: ANN401
    """An OutboxRecord from an outbox row's columns (in _COLUMNS' order)."""
    published = None
    if status == DONE and remote_id is not None:
        published = Published(platform, remote_id, url or "", json.loads(extra or "{}"))
    return OutboxRecord(key, platform, task_id, status, attempts, published, last_error, as_utc(published_at))


class Delivered:
    """Read-only view of the outbox table: the posts that exist remotely."""

    def __init__(self, engine: Any):  # noqa: ANN401 - a SQLAlchemy Engine or a kernel.dbapi.PlainEngine
        self.engine = engine

    def published(self, platform: str | None = None) -> list[OutboxRecord]:
        """Every post that exists remotely (status done), oldest first."""
        where, params = "status = ?", [DONE]
        if platform is not None:
            where, params = where + " AND platform = ?", [*params, platform]
        sql = placeholders(f"SELECT {_COLUMNS} FROM publishers_outbox WHERE {where} ORDER BY id",
                           self.engine.dialect.name == "postgresql")
        with self.engine.connect() as conn:
            cur = conn.connection.cursor()
            cur.execute(sql, params)
            return [record(*row) for row in cur.fetchall()]
