"""Publisher tables: the outbox. One row per (post key, platform).

Status: pending (committed, not sent) -> sent (a remote call was started; the
outcome is unknown until it returns) -> done | failed. A row left in `sent`
is ambiguous and is resolved with the adapter's find_existing.

Claim (orthogonal to status): claim_token is the fencing token of the one
process working on the row (NULL: nobody), claim_owner says which process
(publishers.lease), lease_until when the claim lapses unless renewed. Every
write of a claimed row is conditional on claim_token (see publishers.outbox).

Slugs (publishers.slugs): one row per post key, written once before the first
delivery; the site's URL of the post (/a/<slug>) never changes afterwards.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kernel.clock import utcnow

# A registry of our own so publisher tables migrate on their own history.
publishers_registry = registry()
metadata = publishers_registry.metadata

PENDING, SENT, DONE, FAILED = "pending", "sent", "done", "failed"


class PublishersBase(SQLModel, registry=publishers_registry):
    pass


class OutboxRow(PublishersBase, table=True):
    __tablename__ = "publishers_outbox"
    __table_args__ = (UniqueConstraint("key", "platform"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, index=True)
    platform: str = Field(max_length=32, index=True)
    task_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=PENDING, max_length=16, index=True)
    attempts: int = 0
    remote_id: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=1000)
    extra: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object of strings
    last_error: str | None = Field(default=None, max_length=1000)
    last_status: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    claim_token: str | None = Field(default=None, max_length=64)
    claim_owner: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None


class SlugRow(PublishersBase, table=True):
    """The site slug of one post: derived once from its title and key, then only read."""

    __tablename__ = "publishers_slug"

    key: str = Field(primary_key=True, max_length=200)
    slug: str = Field(max_length=120, unique=True)
    task_id: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow)
