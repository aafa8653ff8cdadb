"""The report read on the stdlib sqlite3 equals the report read through SQLAlchemy, on the same ledger.

`selfpub ledger report` on a SQLite file at head runs on kernel.dbapi.PlainEngine (no SQLAlchemy import);
the same statements, the same connection tuning: every figure, every range, period and `top` must match
what SQLAlchemy's engine reads (JSON, CSV and the table alike).
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from config.settings import BudgetSettings, SustainSettings
from kernel.db import make_engine
from kernel.dbapi import PlainEngine
from ledger import Budget, Entry, Journal
from ledger.accounts import GAS, NATIVE, WALLET, reads_account
from ledger.query import PERIODS
from ledger.reports import build_report, render_table, to_csv
from tests.ledger.conftest import Clock
from tests.ledger.ledgerdata import START, populate

DAYS = 10
NOW = START + timedelta(days=DAYS, hours=1)
TASKS = [f"task-{i}" for i in range(DAYS // 2)]


@pytest.fixture(scope="module")
def ledger_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A populated ledger (every kind of transaction, paid reads and gas in wei too), made through SQLAlchemy."""
    path = tmp_path_factory.mktemp("plain") / "selfpub.db"
    engine = make_engine(f"sqlite:///{path}")
    journal = Journal(engine)
    journal.migrate()
    populate(journal, Clock(), days=DAYS)
    for i, kind in enumerate(("article", "brief", "article")):
        journal.post("read", [Entry(WALLET, 50_000 + i), Entry(reads_account(kind), -(50_000 + i))],
                     idempotency_key=f"read-{i}", time=START + timedelta(days=i, hours=13))
    journal.post("gas", [Entry(GAS, 21_000_000_000_000, "WEI"), Entry(NATIVE, -21_000_000_000_000, "WEI")],
                 idempotency_key="gas-1", time=START + timedelta(days=3, hours=2))
    engine.dispose()
    return path


def _journals(path: Path) -> tuple[Journal, Journal]:
    return Journal(make_engine(f"sqlite:///{path}")), Journal(PlainEngine(path))


def _report(journal: Journal, **kwargs: object):  # noqa: ANN202
    budget = Budget(journal, BudgetSettings(daily_cap="100", per_cycle_cap="100"), clock=lambda: NOW)
    return build_report(journal, budget, now=NOW, sustain=SustainSettings(enabled=True), **kwargs)


def _table(report: object) -> str:
    out = io.StringIO()
    render_table(report, Console(file=out, width=160, color_system=None))
    return out.getvalue()


moments = st.one_of(
    st.none(),
    st.dates(min_value=START.date() - timedelta(days=2), max_value=START.date() + timedelta(days=DAYS + 2)),
    st.integers(min_value=-2 * 24 * 60, max_value=(DAYS + 2) * 24 * 60).map(lambda m: START + timedelta(minutes=m)),
)


def _instant(value: date | datetime | None, end: bool = False) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc) + timedelta(days=1 if end else 0)


@settings(max_examples=40, deadline=None)
@given(since=moments, until=moments, by=st.sampled_from(PERIODS), top=st.one_of(st.none(), st.integers(1, 4)),
       made=st.dictionaries(st.sampled_from(TASKS), st.lists(st.sampled_from(["local:1", "devto:7", "bluesky:b"]),
                                                             max_size=2), max_size=3),
       read_price=st.one_of(st.none(), st.integers(0, 90_000)))
def test_the_plain_report_equals_sqlalchemys(  # noqa: ANN001 - drawn by Hypothesis
        ledger_file: Path, since, until, by, top, made, read_price) -> None:
    if since is not None and until is not None and _instant(until, end=True) < _instant(since):
        since, until = until, since
    through_sqlalchemy, plain = _journals(ledger_file)
    try:
        kwargs = {"since": since, "until": until, "by": by, "top": top, "posts_of": made, "read_price": read_price}
        expected, got = _report(through_sqlalchemy, **kwargs), _report(plain, **kwargs)
        assert got == expected
        if top is None:
            assert got.to_json() == expected.to_json()
        assert to_csv(got) == to_csv(expected)
        assert _table(got) == _table(expected)
    finally:
        through_sqlalchemy.engine.dispose()
        plain.engine.dispose()


def test_the_plain_report_covers_what_the_ledger_holds(ledger_file: Path) -> None:
    """The ledger the property runs on is not empty: each section has something to compare."""
    journal = Journal(PlainEngine(ledger_file))
    data = _report(journal).to_dict()
    journal.engine.dispose()
    assert data["balance"] > 0 and data["spend"]["by_agent"] and data["income"]["engagement"]
    assert data["income"]["reads"] and data["gas"] == {"WEI": 21_000_000_000_000} and len(data["posts"]) == len(TASKS)
    assert data["reserved"] == 0 and data["liabilities"] > 0 and data["sustain"]["enabled"]
