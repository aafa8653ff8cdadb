"""The only place that builds real publisher adapters (and their clients) from Settings."""

from __future__ import annotations

from collections.abc import Callable, Collection

import httpx
from atproto import Client
from atproto_client.request import Request
from sqlalchemy import Engine

from config.settings import Settings
from publishers.bluesky import BlueskyPublisher
from publishers.devto import DevtoPublisher
from publishers.dispatch import Dispatcher
from publishers.local import LocalPublisher
from publishers.outbox import DEFAULT_LEASE_SECONDS, Outbox
from publishers.slugs import SlugStore

PLATFORMS = ("devto", "bluesky", "local")
USER_AGENT = "selfpub (+https://github.com/selfpub)"
LEASE_PER_TIMEOUT = 4  # an outbox lease lasts at least this many HTTP timeouts


class PublisherConfigError(ValueError):
    """A platform was asked for that is not enabled or not configured (the message says which key)."""

    retryable: bool | None = None  # the job policy: stop, like a ConfigError


def enabled_platforms(settings: Settings) -> list[str]:
    """Platforms the settings enable; local is the default when no account is configured."""
    p = settings.publishers
    out = [name for name, on in (("devto", p.devto.enabled), ("bluesky", p.bluesky.enabled), ("local", p.local.enabled)) if on]
    return out or ["local"]


def check_platforms(settings: Settings, platforms: Collection[str] | None = None) -> list[str]:
    """The platforms to publish to; PublisherConfigError for an unknown or unconfigured one (nothing touched yet)."""
    wanted = list(platforms) if platforms is not None else enabled_platforms(settings)
    unknown = [w for w in wanted if w not in PLATFORMS]
    if unknown:
        raise PublisherConfigError(f"unknown platform(s) {', '.join(unknown)}: use {', '.join(PLATFORMS)}")
    p = settings.publishers
    if "devto" in wanted and p.devto.api_key_value is None:
        raise PublisherConfigError("publishers.devto.api_key: set api_key.file or api_key.env to your Dev.to API key")
    if "bluesky" in wanted and not p.bluesky.handle:
        raise PublisherConfigError("publishers.bluesky.handle: set the account handle")
    return wanted


def build_channel(
    settings: Settings,
    engine: Engine,
    *,
    platforms: Collection[str] | None = None,
    on_wait: Callable[[str, str, str], None] | None = None,
) -> Dispatcher:
    """A Dispatcher over the enabled (or the requested) platforms; call `await .aclose()` when done.

    `on_wait(platform, key, holder)` is told when a post waits for another process that is sending it.
    """
    wanted = check_platforms(settings, platforms)
    p = settings.publishers
    # A claim's lease must outlast any one remote call (renewals keep it alive meanwhile).
    timeouts = [p.devto.timeout_seconds, p.bluesky.timeout_seconds]
    outbox = Outbox(engine, lease_seconds=max(DEFAULT_LEASE_SECONDS, LEASE_PER_TIMEOUT * max(timeouts)),
                    on_wait=on_wait)
    devto = bluesky = local = None
    closers = []
    if "devto" in wanted:
        http = httpx.AsyncClient(timeout=p.devto.timeout_seconds, headers={"user-agent": USER_AGENT})
        closers.append(http.aclose)
        devto = DevtoPublisher(http, p.devto, p.devto.api_key_value)
    if "bluesky" in wanted:
        client = Client(base_url=p.bluesky.base_url, request=Request(timeout=p.bluesky.timeout_seconds))
        pages = httpx.AsyncClient(timeout=p.bluesky.timeout_seconds, headers={"user-agent": USER_AGENT})
        closers.append(pages.aclose)
        bluesky = BlueskyPublisher(
            client,
            handle=p.bluesky.handle,
            password=p.bluesky.app_password_value,
            session_path=settings.state_dir / "bluesky.session",
            http=pages,
            automated_label=p.bluesky.automated_label,
        )
    if "local" in wanted:
        local = LocalPublisher(p.local.directory or settings.state_dir / "outbox")
    # The site's link only when this persona serves the site: a link to an address nobody serves is no copy.
    site_url = settings.site.public_url if settings.site.enabled else None
    dispatcher = Dispatcher(outbox, devto=devto, bluesky=bluesky, local=local, slugs=SlugStore(engine),
                            site_url=site_url)
    for closer in closers:
        dispatcher.on_close(closer)
    return dispatcher
