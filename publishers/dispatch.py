"""The PublishChannel: every enabled platform, in order, through the outbox.

Order: Dev.to first; then the local folder; then Bluesky, whose post links
(link card + link facet) to the Dev.to article URL. A post links only to what
a reader can open:

    the agent's own site (site_url given)       -> <site_url>/a/<slug>, for Bluesky, and as
                                                  Dev.to's canonical_url unless the author
                                                  named another original
    Dev.to article public (publish = true)     -> its URL
    Dev.to article a draft (publish = false)   -> post.canonical_url if the author named
      or Dev.to not enabled / refused             a public original, else no link and no
                                                  card: the text stands on its own
    a local file's file:// URI                 -> never (it means nothing to readers and
                                                  would leak a local path; DESIGN invariant 7)

The slug is assigned (publishers.slugs: derived once, stored) before the
first delivery of every post, site or not, so a site enabled later serves
every article under the URL it will always have.

A draft's URL is a 404 for everyone but its author, and a Bluesky record
cannot be edited to add the link once the draft goes public; a source page
is not used instead, since a card for someone else's article would pass it
off as ours. When Dev.to is enabled but failed *retryably*, the Bluesky post
waits (same reason); when Dev.to failed permanently, Bluesky falls back as if
Dev.to were not enabled.

One platform failing does not stop the others. After trying all of them,
publish_all raises:
    DispatchRetryableError(RetryableError)   some platform failed retryably
    DispatchPermanentError(PermanentError)   every failure was permanent
each carrying `.published` (what exists remotely) and `.errors` (one
PublishError per failed platform, with platform, status and message).
Retrying publish_all is safe: the outbox returns what was already delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from publishers.outbox import Outbox
from publishers.protocol import Metrics, PermanentError, Post, Published, Publisher, PublishError, RetryableError
from publishers.slugs import SlugStore

log = logging.getLogger(__name__)


class DispatchRetryableError(RetryableError):
    """At least one platform failed retryably; `.published` and `.errors` say which."""

    def __init__(self, published: list[Published], errors: list[PublishError]):
        self.published = published
        self.errors = errors
        first = errors[0]
        super().__init__("+".join(e.platform for e in errors), "; ".join(str(e) for e in errors), status=first.status,
                         retry_after=max((e.retry_after for e in errors if e.retry_after is not None), default=None))


class DispatchPermanentError(PermanentError):
    """Every failed platform failed permanently; `.published` and `.errors` say which."""

    def __init__(self, published: list[Published], errors: list[PublishError]):
        self.published = published
        self.errors = errors
        super().__init__("+".join(e.platform for e in errors), "; ".join(str(e) for e in errors), status=errors[0].status)


class Dispatcher:
    """PublishChannel over Dev.to, Bluesky and the local folder (each optional)."""

    def __init__(
        self,
        outbox: Outbox,
        devto: Publisher | None = None,
        bluesky: Publisher | None = None,
        local: Publisher | None = None,
        *,
        slugs: SlugStore | None = None,
        site_url: str | None = None,
    ):
        self.outbox = outbox
        self.devto = devto
        self.bluesky = bluesky
        self.local = local
        self.slugs = slugs
        self.site_url = site_url.rstrip("/") if site_url else None  # served by us: a copy every reader can open
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @property
    def publishers(self) -> list[Publisher]:
        """The enabled publishers, in publishing order."""
        return [p for p in (self.devto, self.local, self.bluesky) if p is not None]

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` on aclose() (clients the wiring built)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Close the clients handed over by the wiring."""
        for closer in reversed(self._closers):
            await closer()
        self._closers.clear()

    async def publish_all(self, post: Post) -> list[Published]:
        """Publish to every enabled platform exactly once; raise after trying all if any failed."""
        published: list[Published] = []
        errors: list[PublishError] = []
        devto_failed_retryably = False
        site_link = self.site_link(post)
        if site_link is not None:
            post = replace(post, canonical_url=post.canonical_url or site_link)
        link = site_link or post.canonical_url
        if self.devto is not None:
            try:
                article = await self.outbox.deliver(self.devto, post)
                published.append(article)
                if site_link is None and article.public and article.url:
                    link = article.url
                elif site_link is None:
                    log.info("Dev.to article is a draft: the other posts do not link to it",
                             extra={"key": post.key, "remote_id": article.remote_id})
            except PublishError as exc:
                errors.append(exc)
                devto_failed_retryably = isinstance(exc, RetryableError)
        linked = replace(post, link_url=post.link_url or link)
        if self.local is not None:
            try:
                published.append(await self.outbox.deliver(self.local, linked))
            except PublishError as exc:
                errors.append(exc)
        if self.bluesky is not None:
            done = self.outbox.get(post.key, self.bluesky.name)
            if devto_failed_retryably and site_link is None and (done is None or done.published is None):
                errors.append(RetryableError(self.bluesky.name, "waiting for the Dev.to article to link to"))
            else:
                try:
                    published.append(await self.outbox.deliver(self.bluesky, linked))
                except PublishError as exc:
                    errors.append(exc)
        if errors:
            for exc in errors:
                log.warning("publish failed", extra={"platform": exc.platform, "status": exc.status, "key": post.key})
            if any(isinstance(e, RetryableError) for e in errors):
                raise DispatchRetryableError(published, errors)
            raise DispatchPermanentError(published, errors)
        return published

    def site_link(self, post: Post) -> str | None:
        """The post's page on the agent's site (its slug assigned now if it has none); None without a site."""
        if self.slugs is None:
            return None
        slug = self.slugs.assign(post.key, post.title, post.task_id)
        return f"{self.site_url}/a/{slug}" if self.site_url else None

    async def metrics(self) -> list[Metrics]:
        """Engagement counters of everything published, platform by platform."""
        out: list[Metrics] = []
        for publisher in self.publishers:
            records = self.outbox.published(publisher.name)
            done = [r.published for r in records if r.published is not None]
            if done:
                out.extend(await publisher.metrics(done))
        return out
