"""Column types shared by the rooms' SQLAlchemy Core tables.

    UTCDateTime   stores aware datetimes in UTC; returns them aware, in UTC (a naive value is refused)

The same behaviour as SQLModel's UTCDateTime (the type the ORM tables' migrations name), so a
table declared with SQLAlchemy Core reads and writes exactly what its ORM twin did, and a module
using it loads neither SQLModel nor the ORM (a read-only command starts faster).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import types

from kernel.clock import as_utc

UTC = timezone.utc


class UTCDateTime(types.TypeDecorator):
    """Store aware datetimes and return them in UTC."""

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UTCDateTime()"

    def coerce_compared_value(self, op: Any, value: Any) -> types.TypeEngine:  # noqa: ANN401
        if isinstance(value, timedelta):
            return types.Interval()
        return self

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ANN401
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("datetime values must carry a time zone: use kernel.clock.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ANN401
        return as_utc(value)  # SQLite stores UTC without an offset
