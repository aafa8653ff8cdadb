"""The seam between the agents and the platforms.

Errors (retryable, read by the daemon's job policy: True = again at the next run, False = permanent,
recorded and skipped, None = the daemon stops and is restarted):
    PublishError                 retryable None; carries platform, status and the platform's message
     +-- RetryableError          True: timeouts, 429 (retry_after), 5xx, connection reset
     +-- PermanentError          False: 401, 403, 422, validation
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class PublishError(Exception):
    """A platform refused or failed a request."""

    retryable: bool | None = None

    def __init__(self, platform: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        self.platform = platform
        self.status = status
        self.message = message
        self.retry_after = retry_after
        code = f" {status}" if status is not None else ""
        super().__init__(f"{platform}{code}: {message}")


class RetryableError(PublishError):
    """Try again later (the outcome may be ambiguous: look it up before posting again)."""

    retryable = True


class PermanentError(PublishError):
    """Retrying will not help; the post is recorded as failed."""

    retryable = False


@dataclass(frozen=True)
class Post:
    """What to publish: the article and its short post. `key` is the idempotency key."""

    key: str
    title: str
    body_markdown: str
    bsky_text: str
    tags: tuple[str, ...] = ()
    description: str = ""
    canonical_url: str | None = None
    link_url: str | None = None  # the article the short post links to (set after Dev.to)
    task_id: str | None = None


@dataclass(frozen=True)
class Published:
    platform: str
    remote_id: str
    url: str
    extra: dict[str, str] = field(default_factory=dict)  # e.g. at-uri, cid

    @property
    def public(self) -> bool:
        """Whether a reader can open `url`: False for a post its adapter marks extra["published"] = "false" (a draft)."""
        return self.extra.get("published", "true").lower() != "false"


@dataclass(frozen=True)
class Metrics:
    """Engagement counters of one published post; None means the platform did not say."""

    platform: str
    remote_id: str
    views: int | None = None
    reactions: int | None = None
    comments: int | None = None
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    quotes: int | None = None


class Publisher(Protocol):
    """One platform adapter."""

    name: str

    async def publish(self, post: Post) -> Published:
        """Create the post remotely; raise RetryableError or PermanentError."""
        ...

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        """Look the post up remotely (after an ambiguous outcome), or None."""
        ...

    async def metrics(self, published: Sequence[Published]) -> list[Metrics]:
        """Engagement counters for posts made earlier."""
        ...


class PublishChannel(Protocol):
    """What the orchestrator hands approved drafts to: every platform, through the outbox."""

    async def publish_all(self, post: Post) -> list[Published]:
        """Publish to every enabled platform exactly once; returns what exists remotely."""
        ...
