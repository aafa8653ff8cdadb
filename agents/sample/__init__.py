"""The demo's sample feed (feed.xml, package data): 30 tech items linking to http://127.0.0.1 paths."""

from __future__ import annotations

from importlib.resources import files

SAMPLE_BASE = "http://127.0.0.1"


def sample_feed_bytes(base_url: str | None = None) -> bytes:
    """The sample feed; with base_url (e.g. "http://127.0.0.1:8788") its links point at that server instead."""
    data = files("agents.sample").joinpath("feed.xml").read_bytes()
    if base_url:
        data = data.replace(f"{SAMPLE_BASE}/".encode(), f"{base_url.rstrip('/')}/".encode())
    return data
