"""The shared kernel: the few facts every room needs, each with one home. Imports nothing else of selfpub.

    kernel/money.py   credits <-> integer micro-credits (parse, format)
    kernel/clock.py   utcnow(): now, timezone-aware UTC; as_utc(): a stored timestamp read on a raw cursor
    kernel/http.py    Retry-After: seconds or an HTTP date, bounded
    kernel/db.py      the database engine, and one registry of every room's migration history
    kernel/versions.py  each room's history and the version read (no SQLAlchemy, no Alembic)
    kernel/dbapi.py   a SQLite file on the stdlib sqlite3: what read-only commands at head open instead

Every room may import kernel; kernel imports no room. Importing `kernel` itself loads nothing:
import the module you need.
"""
