"""The shared kernel: the few facts every room needs, each with one home. Imports nothing else of selfpub.

    kernel/money.py   credits <-> integer micro-credits (parse, format)
    kernel/clock.py   utcnow(): now, timezone-aware UTC
    kernel/http.py    Retry-After: seconds or an HTTP date, bounded
    kernel/db.py      the database engine, and one registry of every room's migration history

Every room may import kernel; kernel imports no room. Importing `kernel` itself loads nothing:
import the module you need.
"""
