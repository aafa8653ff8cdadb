"""Post slugs: the site's URL of a post (/a/<slug>), derived once and stored, never recomputed.

    assign(key, title, task_id)      before the first delivery of a post (the dispatcher)
        stored for the key?  -> that slug, whatever the title says now
        derive(key, title)   -> "<title words>-<8 hex of sha256(key)>", ASCII [a-z0-9-]
        INSERT ... ON CONFLICT DO NOTHING (two workers: one wins, both read the winner back)
        the slug taken by another key (same title, same 8 hex): the longer hash instead

    lookup(slug) / by_keys(keys)     read only: the site and the backfill

A slug is stable because it is stored: a later change of `derive` (or of the
title) never moves an article that Dev.to already names as its canonical URL.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from kernel.clock import utcnow
from publishers.models import SlugRow

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_SLUG_CHARS = 120  # SlugRow.slug's length
MAX_WORDS_CHARS = 60  # the title part
HASH_CHARS = (8, 16, 32)  # the key's hash, longer only on a clash
IN_CHUNK = 500

TABLE = SlugRow.__table__


@dataclass(frozen=True)
class SlugRecord:
    """One stored slug and the post it names."""

    key: str
    slug: str
    task_id: str | None
    created_at: datetime


def title_words(title: str) -> str:
    """The title as lowercase ASCII words joined by '-', cut at a word boundary ("" when nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(words) > MAX_WORDS_CHARS:
        words = words[:MAX_WORDS_CHARS].rsplit("-", 1)[0] if "-" in words[:MAX_WORDS_CHARS] else words[:MAX_WORDS_CHARS]
    return words.strip("-")


def derive(key: str, title: str, *, hash_chars: int = HASH_CHARS[0]) -> str:
    """The slug a post with this key and title gets when it has none yet: URL-safe, unique per key."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:hash_chars]
    words = title_words(title)
    return f"{words}-{digest}" if words else f"post-{digest}"


def is_slug(text: str) -> bool:
    """True when `text` has the shape of a slug (what the site accepts before any database read)."""
    return len(text) <= MAX_SLUG_CHARS and bool(SLUG.match(text))


def _record(row: object) -> SlugRecord:
    return SlugRecord(row.key, row.slug, row.task_id, row.created_at)  # type: ignore[attr-defined]


class SlugStore:
    """The publishers_slug table (the publishers room's history creates it)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def assign(self, key: str, title: str, task_id: str | None = None) -> str:
        """The post's slug: the stored one, or a new one derived now and stored for good."""
        found = self.slug_of(key)
        if found is not None:
            return found
        for chars in HASH_CHARS:
            slug = derive(key, title, hash_chars=chars)
            with self.engine.begin() as conn:
                conn.execute(
                    self._insert(TABLE).on_conflict_do_nothing()
                    .values(key=key, slug=slug, task_id=task_id, created_at=utcnow())
                )
            found = self.slug_of(key)
            if found is not None:  # ours, or a concurrent worker's for the same key
                return found
        raise RuntimeError(f"no free slug for post {key!r}")  # three hash lengths all taken: a bug

    def slug_of(self, key: str) -> str | None:
        """The stored slug of a post key, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(TABLE.c.slug).where(TABLE.c.key == key)).scalar()

    def lookup(self, slug: str) -> SlugRecord | None:
        """The post a slug names, or None."""
        if not is_slug(slug):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(TABLE).where(TABLE.c.slug == slug)).first()
        return _record(row) if row is not None else None

    def by_keys(self, keys: Iterable[str]) -> dict[str, SlugRecord]:
        """key -> its stored slug, for the keys that have one."""
        wanted = sorted(set(keys))
        out: dict[str, SlugRecord] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                for row in conn.execute(select(TABLE).where(TABLE.c.key.in_(wanted[i : i + IN_CHUNK]))):
                    out[row.key] = _record(row)
        return out
