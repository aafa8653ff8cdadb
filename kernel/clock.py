"""The one clock: `utcnow()` is now, timezone-aware UTC.

Rooms import it by name (`from kernel.clock import utcnow`), so a test that
moves time for one module patches that module's `utcnow` and no other.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, timezone-aware UTC (SQLModel stores and returns aware UTC times)."""
    return datetime.now(timezone.utc)
