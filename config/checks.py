"""Value checks for settings that would otherwise break later: each refuses with what is wrong and a fix.

Every check uses the library that will consume the value, so "accepted here"
means "accepted there":

    cron        APScheduler's CronTrigger.from_crontab (and it must fire at least once)
    timezone    zoneinfo.ZoneInfo (a close IANA name suggested with difflib)
    database    SQLAlchemy's make_url: sqlite:////abs/path or postgresql(+psycopg)://, no inline password
    base_url    "embedded" or an http(s) URL with a host
    feed url    an http(s) URL with a host; a feed listed twice is refused
    state_dir   a folder selfpub can create and write (checked without creating anything)
    credits     kernel.money.parse_credits (no float, at most 6 decimals), and never negative

A refusal is a pydantic error of type REFUSED whose context carries `what`
and `fix`; the loader turns it into Problem(key, what, fix), so the key is
added by whoever knows it (a TOML key or an environment variable).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

from kernel.money import AmountError, format_credits, parse_credits

REFUSED = "selfpub_refused"
HTTP_SCHEMES = ("http", "https")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
# The drivers kernel.db.make_engine opens: SQLite (stdlib) and PostgreSQL through psycopg 3.
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
POSTGRES_DRIVERS = ("postgresql", "postgresql+psycopg")
DATABASE_FORMS = ('sqlite:////absolute/path/selfpub.db (or leave database.url unset for state_dir/selfpub.db) '
                  'or postgresql+psycopg://user@host:5432/dbname')
CRON_FIX = ('write five fields "minute hour day-of-month month day-of-week", e.g. "0 */2 * * *" (every two hours), '
            'or remove cron and set interval_minutes')


def refuse(what: str, fix: str) -> PydanticCustomError:
    """A validation error that carries its own fix (the loader adds the key)."""
    return PydanticCustomError(REFUSED, "{what}", {"what": what, "fix": fix})


# -- money -------------------------------------------------------------------------------------


def check_credits(value: object) -> int:
    """A settings amount in credits as integer ucr; every one is a cap, threshold, price or rate, so never negative."""
    try:
        ucr = parse_credits(value)
    except AmountError as exc:
        raise ValueError(str(exc)) from None
    if ucr < 0:
        raise refuse(f"{format_credits(ucr)} credits is negative", 'write an amount of 0 or more credits, e.g. "1.25"')
    return ucr


# -- ratios --------------------------------------------------------------------------------------

RATIO_FIX = 'write the ratio as a decimal of at least 1.0, e.g. "2.0"'


def check_per_mille(value: object) -> int:
    """A ratio written as a decimal ("2.0", "1.5", or a TOML number) of at least 1.0, as an integer per mille."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise refuse(f"{value!r} is not a ratio", RATIO_FIX)
    try:
        ratio = Decimal(str(value).strip())
    except InvalidOperation:
        raise refuse(f"{value!r} is not a ratio", RATIO_FIX) from None
    if not ratio.is_finite():
        raise refuse(f"{value!r} is not a finite ratio", RATIO_FIX)
    milli = ratio * 1000
    if milli != milli.to_integral_value():
        raise refuse(f"{value!r} has more than 3 decimals", RATIO_FIX)
    if milli < 1000:
        raise refuse(f"{value!r} is below 1.0, the break-even ratio", RATIO_FIX)
    return int(milli)


def format_per_mille(milli: int) -> str:
    """A per-mille ratio as the shortest decimal that reads it back (2000 -> "2.0", 1250 -> "1.25")."""
    whole, frac = divmod(milli, 1000)
    return f"{whole}.{f'{frac:03d}'.rstrip('0') or '0'}"


# -- schedule ----------------------------------------------------------------------------------


def cron_verdict(expr: str) -> str | None:
    """Why the scheduler could not run `expr` (None when it can): APScheduler parses it, then it must fire."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        trigger = CronTrigger.from_crontab(expr, timezone="UTC")
    except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the scheduler would raise at start
        return f"APScheduler refuses it: {exc}"
    if trigger.get_next_fire_time(None, datetime.now(timezone.utc)) is None:
        return "it never fires (no such date)"
    return None


def check_cron(value: str) -> str:
    """A cron expression the scheduler accepts and that fires."""
    reason = cron_verdict(value)
    if reason is not None:
        raise refuse(f"{value!r} is not a usable cron expression ({reason})", CRON_FIX)
    return value


def check_timezone(value: str) -> str:
    """An IANA time zone name zoneinfo knows."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = available_timezones()
        by_lower = {name.lower(): name for name in known}
        guess = by_lower.get(value.strip().lower()) or next(iter(difflib.get_close_matches(value, known, n=1)), None)
        hint = f'did you mean "{guess}"? ' if guess else ""
        raise refuse(f"{value!r} is not a time zone zoneinfo knows",
                     f'{hint}write an IANA name such as "UTC" or "Europe/Paris"') from None
    return value


# -- URLs --------------------------------------------------------------------------------------


def _http_problem(value: str) -> str | None:
    """Why `value` is not an http(s) URL with a host (None when it is)."""
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in HTTP_SCHEMES or "://" not in value:
        return "is not an http:// or https:// URL"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    if not parts.hostname:
        return "has no host"
    return None


def _suggest_http(value: str, default_path: str = "") -> str | None:
    """The http(s) URL `value` was probably meant to be ("localhost:8080" -> "http://localhost:8080")."""
    text = value.strip()
    if "://" in text:
        scheme, rest = text.split("://", 1)
        guess = difflib.get_close_matches(scheme.lower(), HTTP_SCHEMES, n=1, cutoff=0.6)
        if not guess or not rest:
            return None
        return f"{guess[0]}://{rest}"
    rest = re.sub(r"^[A-Za-z]{2,6}:?//", "", text).lstrip("/")  # "htps//host" -> "host"
    if not rest or " " in rest:
        return None
    host = urlsplit(f"//{rest}").hostname or ""
    if "." not in host and host not in LOOPBACK_HOSTS:
        return None
    scheme = "http" if host in LOOPBACK_HOSTS else "https"
    path = "" if "/" in rest else default_path
    return f"{scheme}://{rest}{path}"


def check_http_url(value: str) -> str:
    """An http(s) URL with a host (a publisher's base URL, an RPC endpoint, an OTLP endpoint)."""
    problem = _http_problem(value)
    if problem:
        guess = _suggest_http(value)
        hint = f'did you mean "{guess}"? ' if guess else ""
        raise refuse(f"{value!r} {problem}", f'{hint}write the full URL, e.g. "https://example.com"')
    return value


def check_public_url(value: str) -> str:
    """The public base URL of the agent's site: http(s), a host, an optional path; no user, query or fragment."""
    check_http_url(value)
    parts = urlsplit(value.strip())
    if parts.username is not None or parts.password is not None:
        raise refuse(f"{value!r} carries a user name", 'write the address readers open, e.g. "https://example.com"')
    if parts.query or parts.fragment or value.strip().endswith(("?", "#")):
        raise refuse(f"{value!r} has a query or a fragment",
                     'write the base URL only, e.g. "https://example.com" or "https://example.com/blog"')
    return value.strip().rstrip("/")


def check_llm_base_url(value: str, embedded: str) -> str:
    """`embedded` (the bundled model) or the http(s) base URL of an OpenAI-compatible server."""
    if value == embedded:
        return value
    problem = _http_problem(value)
    if problem is None:
        return value
    if difflib.get_close_matches(value.strip().lower(), [embedded], n=1, cutoff=0.75):
        raise refuse(f"{value!r} is neither {embedded!r} nor an http(s) URL",
                     f'did you mean "{embedded}"? (the bundled local model)')
    guess = _suggest_http(value, default_path="/v1")
    hint = f'did you mean "{guess}"? ' if guess else ""
    raise refuse(f"{value!r} {problem}",
                 f'{hint}write the full base URL of an OpenAI-compatible server, e.g. "http://127.0.0.1:8080/v1", '
                 f'or "{embedded}" for the bundled local model')


def check_feed_url(value: str) -> str:
    """An http(s) feed URL with a host: feeds are fetched over HTTP only."""
    problem = _http_problem(value)
    if problem:
        guess = _suggest_http(value)
        hint = f'did you mean "{guess}"? ' if guess else ""
        raise refuse(f"{value!r} {problem}; feeds are fetched over HTTP(S) only",
                     f'{hint}write the feed\'s full URL, e.g. "https://example.com/feed.xml"')
    return value


def feed_key(url: str) -> tuple[str, str, int | None, str, str]:
    """What makes two feed URLs the same feed: scheme, host and port case-insensitively, path, query."""
    parts = urlsplit(url.strip())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, parts.path.rstrip("/") or "/",
            parts.query)


def check_no_duplicate_feeds(feeds: Sequence[Any]) -> Sequence[Any]:
    """Each feed URL at most once (a duplicate would be fetched and written about twice)."""
    seen: dict[tuple, int] = {}
    repeats = []
    for i, feed in enumerate(feeds):
        first = seen.setdefault(feed_key(feed.url), i)
        if first != i:
            repeats.append(f"feeds[{i}] repeats feeds[{first}] ({feed.url})")
    if repeats:
        raise refuse("a feed is listed twice: " + "; ".join(repeats), "remove the repeated [[feeds]] table")
    return feeds


# -- database ----------------------------------------------------------------------------------


def mask_password(text: str) -> str:
    """`text` with anything between "user:" and "@" replaced, safe to print."""
    return re.sub(r"((?:^|//)[^/:@]*:)[^@/]*@", r"\1***@", text)


def check_database_url(value: str) -> str:
    """A SQLite file URL with an absolute path, or a PostgreSQL URL, without a password in it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = mask_password(value)
    try:
        url = make_url(value)
    except ArgumentError:
        if "://" not in value and value.strip():
            path = value.strip()
            fix = f'for a SQLite file write "sqlite:///{path if os.path.isabs(path) else "/absolute/path/" + path}"'
        else:
            fix = f"write {DATABASE_FORMS}"
        raise refuse(f"{shown!r} is not a database URL", fix) from None
    driver = url.drivername
    if driver in ("postgres", "postgresql+psycopg2", "postgresql+pg8000", "postgresql+asyncpg"):
        raise refuse(f"{shown!r}: SQLAlchemy has no {driver}:// driver here",
                     "use postgresql+psycopg:// (psycopg 3), e.g. postgresql+psycopg://user@host:5432/dbname")
    if driver not in SQLITE_DRIVERS + POSTGRES_DRIVERS:
        raise refuse(f"{shown!r} is a {url.get_backend_name()} database; selfpub keeps its state in SQLite or "
                     "PostgreSQL only", f"write {DATABASE_FORMS}")
    if url.password is not None:
        raise refuse(f"{url.render_as_string(hide_password=True)!r} holds the database password inline; "
                     "secrets never live in the config file",
                     'remove the password from the URL and write database.password_file = "/path" (a chmod 600 '
                     'file; under systemd a credential name) or database.password_env = "VAR_NAME"')
    if driver in SQLITE_DRIVERS:
        if not url.database or url.database == ":memory:":
            raise refuse(f"{shown!r} is an in-memory database: every command would start with an empty ledger",
                         "write sqlite:////absolute/path/selfpub.db, or leave database.url unset")
        if not os.path.isabs(url.database):
            raise refuse(f"{shown!r} is a path relative to whatever folder selfpub is started from",
                         f'write an absolute path with four slashes, e.g. "sqlite:////var/lib/selfpub/{url.database}", '
                         "or leave database.url unset for state_dir/selfpub.db")
    return value


def database_url_with_password(url: str, password: str | None) -> str:
    """`url` with the password (read from its file or variable) put in; the URL itself never holds one."""
    if password is None:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=password).render_as_string(hide_password=False)


# -- state dir ---------------------------------------------------------------------------------


def state_dir_problem(path: Path) -> str | None:
    """Why selfpub could not keep its state in folder `path` (None when it can); creates and touches nothing."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    where = f"{path} is" if existing == path else f"{path} does not exist and its nearest existing parent {existing} is"
    fs = os.statvfs(existing)
    if fs.f_flag & os.ST_RDONLY:
        return f"{where} on a read-only file system"
    # root passes access() everywhere, yet nothing can be created under /proc or /sys: they hold no blocks.
    if fs.f_blocks == 0:
        return f"{where} on a virtual file system (like /proc) that holds no files"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{where} not writable by this user"
    return None


def state_dir_fix(path: Path, key: str = "state_dir") -> str:
    """How to make folder `path` usable for the setting `key`."""
    return (f"set {key} to a folder the selfpub user can write, or create it with "
            f"`install -d -m 700 {path}` (as root, with -o for the service user)")


def sqlite_folder(url: str) -> Path | None:
    """The folder of a SQLite database file URL (None for any other URL)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername not in SQLITE_DRIVERS or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).parent
