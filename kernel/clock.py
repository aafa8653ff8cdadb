"""The one clock: `utcnow()` is now, timezone-aware UTC.

Rooms import it by name (`from kernel.clock import utcnow`), so a test that
moves time for one module patches that module's `utcnow` and no other.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utcnow() -> datetime:
    """Now, timezone-aware UTC (SQLModel stores and returns aware UTC times)."""
    return datetime.now(timezone.utc)


def as_utc(value: Any) -> datetime | None:  # noqa: ANN401 - a driver's timestamp: str (SQLite) or datetime
    """A stored timestamp read on a raw cursor, as SQLAlchemy's UTC columns return it: aware, in UTC.

    SQLite holds "YYYY-MM-DD HH:MM:SS.ffffff" in UTC without an offset; psycopg returns an aware datetime.
    """
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=timezone.utc) if when.utcoffset() is None else when.astimezone(timezone.utc)
