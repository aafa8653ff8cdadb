"""End-to-end fixtures: a local feed server (others may add theirs in other files)."""

from __future__ import annotations

from tests.agents.feeds_support import feed_server  # noqa: F401 - a fixture, re-exported for tests/e2e
