"""What the research agent remembers across restarts: feed validators and every item seen.

Tables (own registry, own Alembic history, version table
`alembic_version_agents_research`):

    research_feed_state  one row per feed URL: ETag, Last-Modified, last status/error
    research_seen_item   one row per canonical item URL: content hash, MinHash
                         signature, covered flag (a topic already written about)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Column, Engine, LargeBinary, Text, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel

from agents.messages import FeedItem
from kernel.clock import utcnow
from kernel.db import migrate

VERSION_TABLE = "alembic_version_agents_research"
MIGRATIONS = Path(__file__).resolve().parent / "migrations_research"
IN_CHUNK = 500  # bound on bound parameters per IN (...) query

research_registry = registry()
metadata = research_registry.metadata


class ResearchBase(SQLModel, registry=research_registry):
    pass


class FeedState(ResearchBase, table=True):
    __tablename__ = "research_feed_state"

    feed_url: str = Field(primary_key=True, max_length=1000)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    last_status: int | None = None  # HTTP status of the last fetch; None when it never got one
    last_outcome: str = Field(default="", max_length=32)  # ok|not_modified|truncated|http_error|...
    last_error: str | None = Field(default=None, max_length=1000)
    checked_at: datetime = Field(default_factory=utcnow)
    ok_at: datetime | None = None


class SeenItem(ResearchBase, table=True):
    __tablename__ = "research_seen_item"

    id: int | None = Field(default=None, primary_key=True)
    url_key: str = Field(unique=True, max_length=64)  # sha256 of the canonical URL
    url: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(index=True, max_length=64)
    feed_url: str = Field(default="", max_length=1000)
    title: str = Field(default="", max_length=300)
    signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    covered: bool = Field(default=False, index=True)
    item_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # for the backlog
    first_seen_at: datetime = Field(default_factory=utcnow)
    covered_at: datetime | None = None


@dataclass(frozen=True)
class Validators:
    """What a conditional GET sends back to a feed."""

    etag: str | None = None
    last_modified: str | None = None


def _chunks(values: Sequence[str], n: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]


class ResearchStore:
    """Feed state and seen items on the state database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # save_feed_state reads the row, then writes it: BEGIN IMMEDIATE takes the write lock up front
        # (a deferred read-then-write transaction gets SQLITE_BUSY at once in WAL mode, no busy_timeout).
        self._writer = engine.execution_options(sqlite_begin="IMMEDIATE")

    def migrate(self) -> None:
        """Upgrade the research tables to head."""
        migrate(self.engine, MIGRATIONS, VERSION_TABLE)

    # -- feeds ---------------------------------------------------------------------

    def validators(self, feed_url: str) -> Validators:
        """The ETag / Last-Modified stored for a feed (empty when never fetched)."""
        with Session(self.engine) as s:
            row = s.get(FeedState, feed_url)
            return Validators(row.etag, row.last_modified) if row else Validators()

    def feed_state(self, feed_url: str) -> FeedState | None:
        """The stored state of one feed."""
        with Session(self.engine) as s:
            row = s.get(FeedState, feed_url)
            if row is not None:
                s.expunge(row)
            return row

    def save_feed_state(
        self,
        feed_url: str,
        *,
        status: int | None,
        outcome: str,
        error: str | None = None,
        validators: Validators | None = None,
    ) -> None:
        """Record a fetch; new validators replace the old ones only when given."""
        now = utcnow()
        with Session(self._writer) as s:
            row = s.get(FeedState, feed_url) or FeedState(feed_url=feed_url)
            row.last_status, row.last_outcome, row.checked_at = status, outcome, now
            row.last_error = error[:1000] if error else None
            if validators is not None:
                row.etag = validators.etag[:500] if validators.etag else None
                row.last_modified = validators.last_modified[:100] if validators.last_modified else None
            if outcome in ("ok", "not_modified", "truncated"):
                row.ok_at = now
            s.add(row)
            s.commit()

    # -- items ---------------------------------------------------------------------

    def known(self, url_keys: Sequence[str], hashes: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which of these URL keys and content hashes are already stored."""
        seen_keys: set[str] = set()
        seen_hashes: set[str] = set()
        with Session(self.engine) as s:
            for part in _chunks(list(dict.fromkeys(url_keys))):
                seen_keys.update(s.exec(select(SeenItem.url_key).where(SeenItem.url_key.in_(part))).scalars())
            for part in _chunks(list(dict.fromkeys(hashes))):
                seen_hashes.update(
                    s.exec(select(SeenItem.content_hash).where(SeenItem.content_hash.in_(part))).scalars()
                )
        return seen_keys, seen_hashes

    def record_seen(self, rows: Sequence[dict]) -> None:
        """Insert seen items (dicts of SeenItem columns); rows already stored are left as they are."""
        if not rows:
            return
        table = SeenItem.__table__
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        now = utcnow()
        values = [{"first_seen_at": now, "covered": False, **r} for r in rows]
        with self.engine.begin() as conn:
            for i in range(0, len(values), IN_CHUNK // 5):
                conn.execute(insert(table).on_conflict_do_nothing(index_elements=["url_key"]), values[i : i + IN_CHUNK // 5])

    def mark_covered(self, row: dict) -> None:
        """Flag one item's topic as covered (inserting it first when it was never seen)."""
        self.record_seen([row])
        with self.engine.begin() as conn:
            conn.execute(
                update(SeenItem.__table__)
                .where(SeenItem.__table__.c.url_key == row["url_key"])
                .values(covered=True, covered_at=utcnow(), signature=row.get("signature"))
            )

    def covered_signatures(self, after_id: int = 0) -> list[tuple[int, str, bytes]]:
        """(id, url_key, signature) of covered items with id > after_id, oldest first."""
        t = SeenItem.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.url_key, t.c.signature)
                .where(t.c.covered.is_(True), t.c.id > after_id, t.c.signature.is_not(None))
                .order_by(t.c.id)
            ).all()
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    def backlog(self, limit: int = 200) -> list[str]:
        """JSON of seen items not yet covered, newest first: candidates a later cycle may still take."""
        t = SeenItem.__table__
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.item_json)
                .where(t.c.covered.is_(False), t.c.item_json.is_not(None))
                .order_by(t.c.id.desc())
                .limit(limit)
            ).scalars()
            return list(rows)

    def is_covered(self, url_key: str) -> bool:
        """True when the item with this URL key was marked covered."""
        t = SeenItem.__table__
        with self.engine.connect() as conn:
            return bool(conn.execute(select(t.c.covered).where(t.c.url_key == url_key)).scalar())


def seen_row(item: FeedItem, url_key: str, signature: bytes | None) -> dict:
    """The SeenItem columns of one feed item."""
    return {
        "url_key": url_key,
        "url": item.url,
        "content_hash": item.content_hash,
        "feed_url": item.feed_url[:1000],
        "title": item.title[:300],
        "signature": signature,
        "item_json": item.model_dump_json(),
    }
