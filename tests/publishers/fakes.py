"""A scripted in-memory Publisher for outbox and dispatcher tests."""

from __future__ import annotations

from collections.abc import Sequence

from publishers.protocol import Metrics, PermanentError, Post, Published, RetryableError


class LostResponse(RetryableError):
    """The remote side created the post but the answer never arrived."""


class ScriptedPublisher:
    """Remembers what it created; `script` holds outcomes for successive publish calls."""

    def __init__(self, name: str, script: Sequence[str] = ()):
        self.name = name
        self.script = list(script)  # "ok" | "lost" | "retry" | "perm"
        self.remote: dict[str, Published] = {}
        self.publish_calls: list[Post] = []
        self.lookups = 0

    async def publish(self, post: Post) -> Published:
        self.publish_calls.append(post)
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "retry":
            raise RetryableError(self.name, "busy", status=503)
        if outcome == "perm":
            raise PermanentError(self.name, "invalid", status=422)
        published = Published(self.name, f"{self.name}-{len(self.remote) + 1}", f"https://{self.name}.example/{post.key}", {"link": post.link_url or ""})
        self.remote[post.key] = published
        if outcome == "lost":
            raise LostResponse(self.name, "connection reset after send")
        return published

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        self.lookups += 1
        return self.remote.get(idempotency_key)

    async def metrics(self, published: Sequence[Published]) -> list[Metrics]:
        return [Metrics(self.name, p.remote_id, likes=7) for p in published]
